"""`emoview train RECIPE`: build the data a recipe names, train, and write a run folder.

    emoview train fer2013 --data ../shared/data --out runs/fer2013
    emoview train ravdess --data /data --out runs/ravdess --epochs 60
    emoview train fer2013 --set train.lr=1e-3 --set spec.align=roll     # any recipe setting

The run folder gets config.json (the full recipe after overrides), data_summary.json, best.pt,
last.pt, metrics.json, history.json, confusion_*.png and curves.png. Running the same command
again on an unfinished run folder resumes it from last.pt.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.realtime.files import check_output_folder

OUTPUTS = ("best.pt", "last.pt", "metrics.json", "history.json", "curves.png", "config.json", "data_summary.json",
           "val_features.npz")


def configure(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import add_face_model_option, positive_int, thread_count
    from emoview.train.config import available
    from emoview.train.extract import default_cache

    parser.add_argument("recipe", help=f"a built-in recipe ({', '.join(available())}) or a recipe .toml file")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOVIEW_DATA", "../shared/data")),
                        help="folder that holds the recipe's datasets, e.g. fer2013/ and ckplus48/ (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/RECIPE)")
    parser.add_argument("--epochs", type=positive_int, help="override the recipe's epochs")
    parser.add_argument("--limit", type=positive_int, help="use at most N items per source (quick runs)")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any recipe setting, e.g. train.lr=1e-3, spec.window=30, model.attention=true, "
                        "sources.0.labels=ferplus")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="feature cache (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    parser.add_argument("--threads", type=thread_count, default=min(2, os.cpu_count() or 1),
                        help="torch threads (default: %(default)s; use 1 when another training shares the cores)")
    add_face_model_option(parser)


def apply_overrides(data: dict, pairs: list[str]) -> dict:
    """`section.key=value` (value parsed as TOML, else kept as a string) into a recipe dict."""
    import tomllib

    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--set {pair!r}: expected KEY=VALUE, e.g. train.lr=1e-3")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *parents, leaf = key.split(".")
        node = data
        for part in parents:  # sections by name, list entries by number: sources.0.weight=2
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and isinstance(node.get(part), (dict, list)):
                node = node[part]
            else:
                raise InputError(f"--set {pair!r}: no section {part!r} in the recipe")
        if not isinstance(node, dict):
            raise InputError(f"--set {pair!r}: {key.rsplit('.', 1)[0]} is not a section")
        node[leaf] = value
    return data


def run(args: argparse.Namespace) -> int:
    import torch

    from emoview.train.config import load_recipe, recipe_from_dict
    from emoview.train.data import build_splits
    from emoview.train.trainer import train_run

    recipe = load_recipe(args.recipe)
    data = recipe.to_dict()
    if args.epochs:
        data["train"]["epochs"] = args.epochs
    if args.seed is not None:
        data["train"]["seed"] = args.seed
    recipe = recipe_from_dict(apply_overrides(data, args.set), f"recipe {recipe.name}")
    out = args.out or Path("runs") / recipe.name
    encoder = recipe.train.encoder_from
    if encoder and not Path(encoder).is_file():  # before minutes of data loading
        raise InputError(f"recipe {recipe.name} starts from the crop encoder in {encoder}, which does not exist; "
                         "train stage one first (e.g. `emoview train fer2013_crop`) or --set train.encoder_from=\"PATH\"")
    check_output_folder(out, "--out")
    check_output_folder(args.cache, "--cache")
    _prepare(out, args.overwrite)
    if args.device != "cpu" and not torch.cuda.is_available():
        raise InputError(f"device {args.device!r} is not available here; use --device cpu")
    torch.set_num_threads(args.threads)
    start = time.time()
    splits = build_splits(recipe, args.data, args.cache, args.face_model, args.limit)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**recipe.to_dict(), "limit": args.limit, "data": str(args.data)}, indent=2))
    (out / "data_summary.json").write_text(json.dumps(splits.summary, indent=2))
    for name, artifact in splits.artifacts.items():
        (out / f"{name}.json").write_text(json.dumps(artifact, indent=2))
    stderr.print(_describe(splits.summary))
    metrics = train_run(recipe, splits, out, args.device)
    val = metrics["val"]
    line = f"{out}: val accuracy {val['accuracy']:.3f}, macro-F1 {val['macro_f1']:.3f}"
    if "all_images" in val:
        line += f" (counting faces not found as wrong: {val['all_images']['accuracy']:.3f} / {val['all_images']['macro_f1']:.3f})"
    for name in splits.extra:
        line += f"; {name} accuracy {metrics[name]['accuracy']:.3f}, macro-F1 {metrics[name]['macro_f1']:.3f}"
    stderr.print(line + f"; best epoch {metrics['best_epoch']}, {time.time() - start:.0f} s in all")
    return 0


def _prepare(out: Path, overwrite: bool) -> None:
    last = out / "last.pt"
    if not last.is_file():
        return
    from emoview.train.checkpoint import load

    if overwrite:
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
        for png in out.glob("confusion_*.png"):
            png.unlink()
        return
    if load(last).get("finished"):
        raise InputError(f"{out} already holds a finished run; pass --overwrite to replace it, or another --out")


def _describe(summary: dict) -> str:
    parts = []
    for name in ("train", "val"):
        s = summary[name]
        parts.append(f"{name} {s['items']} ({s['faces_not_found']} faces not found)")
    parts += [f"{k} {v['items']}" for k, v in summary.items() if k.endswith("holdout")]
    return "data: " + ", ".join(parts)


