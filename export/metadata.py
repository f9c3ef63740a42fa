"""What an exported model says about itself: everything the runtime and a curious user need.

Keys are namespaced `emoview.*`; values are strings or JSON. The spec (`emoview.spec`) is what the
runtime needs to build features; the rest records where the model came from and how good it was.
"""

from __future__ import annotations

from datetime import datetime, timezone

from emoview.export.checkpoint import Run
from emoview.export.onnx_export import OPSET
from emoview.realtime.files import sha256_of
from emoview.realtime.spec import METADATA_KEY
from emoview.realtime.version import emoview_version


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
        "emoview.checkpoint_sha256": sha256_of(run.checkpoint),  # an ensemble's first member's
        "emoview.created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "emoview.version": emoview_version(),
        "emoview.opset": OPSET,
        "emoview.quantization": quantization or "none (float32)",
    }
    if run.members:
        props["emoview.members"] = rest.get("members", [])
    return props
