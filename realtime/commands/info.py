"""`emoview info [--model PATH]`: the emotion model's card, and where the face model comes from.

Everything shown is read from the model file itself (its `emoview.*` metadata), without ONNX
Runtime: what it recognises (labels, window, feature spec), what it was trained and validated on
and how well, when and by which emoview it was made, and whether its weights are the ones export
recorded. A damaged model is shown, then refused (exit 2), like every command refuses it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emoview.realtime.errors import ModelError
from emoview.realtime.face_model import FACE_MODEL_ENV, FACE_MODEL_URL, locate_face_model, verify
from emoview.realtime.spec import METADATA_KEY, FeatureSpec, SpecError
from emoview.realtime.version import emoview_version
from emoview.realtime.weights import WireError, check_weights, is_shipped, read_metadata


def configure(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import add_model_options

    add_model_options(parser, threads=False)
    parser.epilog = "examples:\n  emoview info\n  emoview info --model runs/fer2013/emotion.onnx"


def run(args: argparse.Namespace) -> int:
    from emoview.realtime.classifier import default_model_path

    path = Path(args.model) if args.model else default_model_path()
    metadata = read_card(path)
    check = check_weights(path, metadata)
    card = Table.grid(padding=(0, 2))
    card.add_column(style="bold", no_wrap=True)
    card.add_column(overflow="fold")
    for name, value in model_rows(path, metadata, check) + face_model_rows(args.face_model):
        card.add_row(name, value)
    console = Console(highlight=False)
    console.print(f"emoview {emoview_version()}", markup=False)
    console.print(card)
    if check.problem:
        raise ModelError(check.problem)
    return 0


def read_card(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise ModelError(f"emotion model not found at {path}; pass --model PATH to an emoview .onnx file")
    try:
        metadata = read_metadata(path.read_bytes())
    except (WireError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not an ONNX model ({exc}); pass --model PATH to an emoview .onnx file") from None
    if METADATA_KEY not in metadata:
        raise ModelError(f"{path} has no emoview model card (no {METADATA_KEY} in its metadata); pass --model PATH to a model made by `emoview export`")
    return metadata


def _json(metadata: dict[str, str], key: str):
    try:
        return json.loads(metadata[key])
    except (KeyError, ValueError):
        return metadata.get(key)


def model_rows(path: Path, metadata: dict[str, str], check) -> list[tuple[str, str]]:
    where = "the one shipped with emoview" if is_shipped(path) else "--model"
    recipe = _json(metadata, "emoview.recipe") or {}
    rows = [("emotion model", escape(f"{path} ({where}, {path.stat().st_size / 1e6:.1f} MB)"))]
    if isinstance(recipe, dict) and recipe.get("description"):
        rows.append(("description", escape(f"{recipe['description']} (recipe {recipe.get('name', '?')})")))
    spec = _json(metadata, METADATA_KEY)
    rows += [
        ("labels", ", ".join(spec.get("labels", []))),
        ("window", f"{spec.get('window', '?')} frames"),
        ("spec", spec_text(metadata[METADATA_KEY], spec)),
        ("data", data_text(_json(metadata, "emoview.data_summary"))),
        ("validation", metrics_text(_json(metadata, "emoview.metrics"))),
        ("made", made_text(metadata)),
    ]
    digest = f"{check.digest[:16]} (first 16 of 64 hex digits)" if check.digest else "none recorded"
    style = "red" if check.problem else ("green" if check.verified.startswith("verified") else "yellow")
    rows.append(("weights", f"sha256 {digest}; [{style}]{escape(check.verified)}[/]"))
    return rows


def spec_text(text: str, spec: dict) -> str:
    """Every spec setting as recorded (a newer spec's settings too), and the feature count if known."""
    settings = ", ".join(f"{k} {v}" for k, v in spec.items() if k not in ("labels", "window", "name", "version"))
    try:
        size = f"; {FeatureSpec.from_json(text).feature_size} features per frame"
    except (SpecError, TypeError, ValueError):
        size = "; a spec this emoview does not know: update emoview"
    return escape(f"{spec.get('name', '?')} v{spec.get('version', '?')}: {settings}{size}")


def data_text(summary) -> str:
    if not isinstance(summary, dict) or not summary:
        return "not recorded"
    parts = []
    for name, part in sorted(summary.items(), key=_train_val_first):
        if name == "sources" or not isinstance(part, dict):
            continue
        extra = [f"{part['faces_not_found']} without a face found"] if part.get("faces_not_found") else []
        extra += [f"{part['subjects']} subjects"] if part.get("subjects") else []
        parts.append(f"{name} {part.get('items', '?'):,}" + (f" ({', '.join(extra)})" if extra else ""))
    sources = summary.get("sources") or {}
    if sources:
        parts.append("sources " + ", ".join(f"{name} ({source.get('role', '?')})" for name, source in sources.items()))
    return escape("; ".join(parts) or "not recorded")


def _train_val_first(item: tuple[str, object]) -> tuple[int, str]:
    return ({"train": 0, "val": 1}.get(item[0], 2), item[0])


def metrics_text(metrics) -> str:
    if not isinstance(metrics, dict):
        return "not recorded"
    parts = []
    for name, value in sorted(metrics.items(), key=_train_val_first):
        if isinstance(value, dict) and "accuracy" in value:
            scores = f"{name} accuracy {value['accuracy']:.3f}"
            if "macro_f1" in value:
                scores += f", macro-F1 {value['macro_f1']:.3f}"
            parts.append(scores + (f" on {value['items']:,} items" if "items" in value else ""))
    if not parts:  # older runs: flat numbers
        parts = [f"{name} {value:.3f}" for name, value in metrics.items() if isinstance(value, float)]
    return escape("; ".join(parts) or "not recorded")


def made_text(metadata: dict[str, str]) -> str:
    facts = [metadata.get("emoview.created", "date not recorded")]
    if "emoview.version" in metadata:
        facts.append(f"by emoview {metadata['emoview.version']}")
    if "emoview.epoch" in metadata:
        epoch = metadata["emoview.epoch"]  # a list for an ensemble: each member's
        facts.append(f"best epochs {', '.join(map(str, json.loads(epoch)))}" if epoch.startswith("[") else f"best epoch {epoch}")
    if "emoview.opset" in metadata:
        facts.append(f"opset {metadata['emoview.opset']}")
    if "emoview.quantization" in metadata:
        facts.append(metadata["emoview.quantization"])
    return escape(", ".join(facts))


def face_model_rows(explicit: str | None) -> list[tuple[str, str]]:
    path, origin = locate_face_model(explicit)
    if origin == "download":
        how = (f"not downloaded yet: fetched from {FACE_MODEL_URL} on first use and checked; offline, put it there, "
               f"set {FACE_MODEL_ENV}=PATH or pass --face-model PATH")
        return [("face model", escape(f"{path}")), ("", escape(how))]
    try:
        verify(path, origin)
        status = f"[green]sha256 verified[/] (the official bundle), from {escape(origin)}"
    except ModelError as exc:
        status = f"[red]{escape(str(exc))}[/]"
    return [("face model", escape(str(path))), ("", status)]
