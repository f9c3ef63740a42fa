"""What an exported model says about itself: everything the runtime and a curious user need.

Keys are namespaced `emoview.*`; values are strings or JSON. The spec (`emoview.spec`) is what the
runtime needs to build features; the rest records where the model came from and how good it was.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

from emoview.export.checkpoint import Run
from emoview.export.onnx_export import OPSET
from emoview.realtime.spec import METADATA_KEY

REPO = Path(__file__).resolve().parents[1]


def emoview_version() -> str:
    """The installed package's version, or pyproject's when running from a checkout."""
    try:
        return importlib_metadata.version("emoview")
    except importlib_metadata.PackageNotFoundError:
        pyproject = REPO / "pyproject.toml"
        match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M) if pyproject.is_file() else None
        return match.group(1) if match else "unknown"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_metadata(run: Run, quantization: str | None = None) -> dict[str, object]:
    """Metadata for `export_onnx` (which adds the spec itself under `emoview.spec`)."""
    rest = run.rest
    props: dict[str, object] = {
        METADATA_KEY: run.spec.to_json(),
        "emoview.labels": list(run.spec.labels),
        "emoview.window": run.spec.window,
        "emoview.data_summary": rest.get("data_summary", {}),
        "emoview.metrics": rest.get("metrics", {}),
        "emoview.recipe": rest.get("recipe", {}),
        "emoview.epoch": rest.get("epoch"),
        "emoview.model_config": run.model.config.to_dict(),
        "emoview.checkpoint_sha256": sha256_of(run.checkpoint),
        "emoview.created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "emoview.version": emoview_version(),
        "emoview.opset": OPSET,
        "emoview.quantization": quantization or "none (float32)",
    }
    return props
