"""`emoview export RUN [RUN ...] --out models/NAME.onnx [--flip [N ...]] [--int8]`: training runs to a checked ONNX model.

Several runs make one ensemble model, and `--flip` averages each face crop with its mirror image
(`export.combine`); either way the model is scored and calibrated again on the runs' validation items.

The model is exported under a temporary name, its axes and weights are checked, torch and ONNX
Runtime are compared on random windows of several lengths, and only then does it replace `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from rich.console import Console

from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.realtime.files import check_output_file
from emoview.realtime.weights import is_shipped, write_record


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", nargs="+",
                        help="training run folder (with best.pt), or a checkpoint file; several: one model that averages them")
    parser.add_argument("--flip", nargs="*", type=int, metavar="N",
                        help="fused models: average each face crop's embedding with its mirror image's (2x the crop encoder's "
                        "time); with numbers, only in those runs (1 = the first RUN)")
    parser.add_argument("--out", required=True, metavar="PATH", help="where to write the model, e.g. my-model.onnx")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (and its .int8.onnx)")
    parser.add_argument(
        "--int8",
        nargs="?",
        const="copy",
        choices=("copy", "only"),
        help="also write NAME.int8.onnx (landmark models: dynamic int8 quantization; fused models: static int8 "
             "convolutions calibrated on the run's val crops) and report its accuracy and speed change; "
             "--int8 only: the int8 model, once checked, becomes --out itself",
    )
    parser.epilog = (
        "examples:\n  emoview export runs/fer2013 --out fer2013.onnx --int8\n"
        "  emoview export runs/shipped --out models/emotion.onnx --overwrite   # replace the shipped model (and its sha256 record)\n"
        "  emoview export runs/fer2013 runs/fer2013_wide --flip 1 --out ensemble.onnx   # two runs in one model; the first's crops mirrored too\n"
        "  emoview export runs/fer2013 runs/fer2013_wide --flip 1 --int8 only --out models/emotion.onnx --overwrite   # the shipped model"
    )


def run(args: argparse.Namespace) -> int:
    from emoview.export.checkpoint import load_run, load_val_features
    from emoview.export.metadata import model_metadata
    from emoview.export.onnx_export import export_onnx
    from emoview.export.parity import PARITY_LENGTHS, TOLERANCE, check_parity

    out = Path(args.out)
    if out.suffix != ".onnx" and not out.is_dir():
        raise InputError(f"--out {out} should end in .onnx; e.g. {out.with_suffix('.onnx')}")
    check_output_file(out, "--out", overwrite=args.overwrite, create_folder=True, example="emotion.onnx")
    int8 = out.with_name(f"{out.stem}.int8.onnx")
    if args.int8 and int8.exists() and not args.overwrite:
        raise InputError(f"{int8} (the --int8 copy of --out) already exists; add --overwrite to replace it, or choose another --out")
    console = Console(highlight=False, markup=False, soft_wrap=True)
    with stderr.status(f"loading {', '.join(args.run)}"):
        runs = [load_run(run) for run in args.run]
    if len(runs) > 1 or args.flip is not None:
        from emoview.export.combine import combine_runs

        with stderr.status("scoring and calibrating the combined model on the runs' validation items"):
            run_data = combine_runs(runs, flip=args.flip)
    else:
        run_data = runs[0]
    spec = run_data.spec
    staging = out.with_name(f".{out.name}.exporting")
    try:
        with stderr.status(f"exporting to {out}"):
            export_onnx(run_data.model, run_data.spec, staging, model_metadata(run_data))
        with stderr.status("comparing torch and ONNX Runtime"):
            parity = check_parity(run_data.model, staging, spec.feature_size, crop=spec.crop, embedding=spec.embedding)
        os.replace(staging, out)
        if is_shipped(out):  # replaced on purpose (--overwrite): the shipped model's file check follows it
            write_record(out)
    except OSError as exc:
        raise InputError(f"cannot write {out} ({exc.strerror or exc}); choose a writable --out path") from None
    finally:
        with contextlib.suppress(OSError):  # nothing to clean up when the folder could not be made
            staging.unlink(missing_ok=True)

    made_from = " + ".join(str(p) for p in run_data.members) or str(run_data.checkpoint)
    console.print(f"exported {made_from} -> {out} ({out.stat().st_size / 1e6:.2f} MB, weights inside)")
    if spec.appearance:
        console.print(f"axes: features[batch, time, {spec.feature_size}], crop[batch, 1, {spec.crop}, {spec.crop}], "
                      f"embeddings[batch, time, {spec.embedding}] -> probabilities[batch, {len(spec.labels)}], "
                      f"embedding[batch, {spec.embedding}]; time axis symbolic")
    else:
        console.print(f"axes: features[batch, time, {spec.feature_size}] -> probabilities[batch, {len(spec.labels)}]; time axis symbolic")
    plural = "s" if spec.window != 1 else ""
    console.print(f"labels: {', '.join(spec.labels)}; default window {spec.window} frame{plural}")
    cases = ", ".join(f"B{b}/T{t} {d:.1e}" for (b, t), d in sorted(parity.cases.items()))
    lengths = "/".join(str(t) for t in PARITY_LENGTHS)
    console.print(f"parity torch vs ONNX Runtime (T={lengths}): max |Δ| {parity.max_abs_diff:.2e} <= {TOLERANCE:.0e} ({cases})")
    headline = headline_metrics(run_data.rest.get("metrics") or {})
    if headline:
        source = "of the combined model, on the runs' validation items" if run_data.members else "from training"
        console.print(f"metrics {source}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in headline.items()))

    if args.int8 and spec.appearance:
        from emoview.export.checkpoint import load_val_crops
        from emoview.export.quantize import quantize_fused_int8

        val = load_val_crops(run_data)
        if val is None:
            console.print("int8: not written: a fused model's int8 copy is calibrated and checked on the run's "
                          "validation crops (val_features.npz with 'crops'), which this run folder does not have")
            if args.int8 == "only":
                _int8_in_place(out, None, console)
            return 0
        with stderr.status("quantizing the convolutions to int8 and measuring"):
            report = quantize_fused_int8(out, int8, val)
        for line in report.lines():
            console.print(line)
    elif args.int8:
        from emoview.export.quantize import EvalSet, quantize_int8, random_eval_set

        val = load_val_features(run_data)
        if val is None:
            evaluation = random_eval_set(spec.feature_size, spec.window)
        else:
            windows, labels, path = val
            evaluation = EvalSet(windows, labels, f"{len(labels)} validation windows from {path}")
        with stderr.status("quantizing to int8 and measuring"):
            report = quantize_int8(out, int8, evaluation, spec.window)
        for line in report.lines():
            console.print(line)
    if args.int8 == "only":
        _int8_in_place(out, int8 if report.path else None, console)
    return 0


def _int8_in_place(out: Path, int8: Path | None, console: Console) -> None:
    """`--int8 only`: the checked int8 copy replaces the float32 file (and the shipped model's record)."""
    if int8 is None:
        console.print(f"int8: {out} stays float32 (the int8 copy was not written)")
        return
    os.replace(int8, out)
    if is_shipped(out):
        write_record(out)
    console.print(f"int8: {out} is now the int8 model")


def headline_metrics(metrics: dict) -> dict[str, object]:
    """Scalar metrics as they are, and accuracy / macro-F1 out of per-set dicts ("val", hold-outs)."""
    flat: dict[str, object] = {}
    for key, value in sorted(metrics.items()):
        if isinstance(value, dict):
            flat.update({f"{key} {name}": value[name] for name in ("accuracy", "macro_f1") if name in value})
        elif not isinstance(value, list):
            flat[key] = value
    return flat


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
