"""Torch network -> self-describing ONNX file: dynamic batch and time axes, spec in the metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import torch

from realtime.classifier import INPUT_NAME, OUTPUT_NAME
from realtime.spec import METADATA_KEY, FeatureSpec

OPSET = 17


def export_onnx(
    model: torch.nn.Module,
    spec: FeatureSpec,
    out: str | os.PathLike,
    metadata: dict[str, object] | None = None,
) -> Path:
    """Write `model` to `out` with the feature spec and `metadata` (JSON-encoded values) attached."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.zeros(1, spec.window, spec.feature_size)
    torch.onnx.export(
        model,
        (example,),
        str(out),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch", 1: "time"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(out))
    props = {METADATA_KEY: spec.to_json()}
    for key, value in (metadata or {}).items():
        props[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out
