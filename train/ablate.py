"""Short runs of the fer2013 recipe that differ in one input or setting, compared in one table.

    python -m emoview.train.ablate --out /work/runs/ablation --epochs 12 [--only both,landmarks] [--data DIR]

Each variant is `emoview train fer2013 --epochs N --set ...` into OUT/<variant>; a finished variant
is not trained again, so an interrupted sweep continues where it stopped. The table (FER2013 val on
detected faces and counting misses as wrong, CK+ hold-out) is printed and written to OUT/table.md.
Short runs rank the options; they are not the shipped model's numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoview.realtime.commands.cli import main as emoview

# one-frame windows: the comparison is about inputs, and each variant must take minutes
COMMON = ["--set", "spec.window=1"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "both": ("mp478 3D rigid3d + blendshapes (default)", []),
    "landmarks": ("landmarks only", ["--set", 'train.inputs="landmarks"']),
    "blendshapes": ("blendshapes only", ["--set", 'train.inputs="blendshapes"']),
    "ibug68": ("iBUG-68 subset (3D rigid3d) + blendshapes", ["--set", 'spec.layout="ibug68"']),
    "roll": ("mp478 3D, roll alignment + blendshapes", ["--set", 'spec.align="roll"']),
    "ferplus": ("FER+ majority labels for FER train", ["--set", 'sources.0.labels="ferplus"']),
    "blend": ("FER2013 + FER+ votes 50/50 (soft)", ["--set", 'sources.0.labels="blend"']),
}


def row(name: str, what: str, run: Path) -> str:
    m = json.loads((run / "metrics.json").read_text())
    val, ck = m["val"], m.get("ckplus_holdout", {})
    full = val.get("all_images", val)
    return (f"| {name} | {what} | {val['accuracy']:.3f} | {val['macro_f1']:.3f} | {full['accuracy']:.3f} | "
            f"{full['macro_f1']:.3f} | {ck.get('accuracy', float('nan')):.3f} | {ck.get('macro_f1', float('nan')):.3f} | "
            f"{m['best_epoch']} | {m['train_seconds'] / 60:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--only", help="comma-separated variant names")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--threads", default="2", help="torch threads per run")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(VARIANTS)
    lines = [
        "| variant | inputs / setting | val acc | val macro-F1 | val acc (misses wrong) | macro-F1 (misses wrong) "
        "| CK+ hold-out acc | CK+ macro-F1 | best epoch | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        what, extra = VARIANTS[name]
        run = args.out / name
        if not (run / "metrics.json").is_file():
            code = emoview(["train", "fer2013", "--data", args.data, "--out", str(run), "--epochs", str(args.epochs), "--threads", args.threads, *COMMON, *extra])
            if code == 130:  # interrupted: stop the sweep, a rerun continues it
                return code
            if code != 0:
                print(f"{name}: emoview train exited with {code}")
                continue
        lines.append(row(name, what, run))
    table = "\n".join(lines)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
