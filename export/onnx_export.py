"""Torch network -> self-describing ONNX file: dynamic batch and time axes, spec in the metadata.

The legacy (TorchScript) exporter is used because it keeps the time axis symbolic through the
LSTM; the dynamo exporter can silently specialise it to the example's length. Either way the saved
graph is checked afterwards, so a file whose time axis got fixed is never left behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from onnx.external_data_helper import uses_external_data

from emoview.realtime.classifier import CROP_INPUT, EMBEDDING_OUTPUT, EMBEDDINGS_INPUT, INPUT_NAME, OUTPUT_NAME
from emoview.realtime.errors import InputError, ModelError
from emoview.realtime.spec import METADATA_KEY, FeatureSpec
from emoview.realtime.weights import WEIGHTS_KEY, weights_sha256

OPSET = 17
BATCH_AXIS = "batch"
TIME_AXIS = "time"


class ExportError(ModelError):
    """The exported graph is not what the runtime needs (fixed axes, missing weights, mismatch)."""


def export_onnx(
    model: torch.nn.Module,
    spec: FeatureSpec,
    out: str | os.PathLike,
    metadata: dict[str, object] | None = None,
) -> Path:
    """Write `model` to `out` with the feature spec and `metadata` (JSON-encoded values) attached.

    The file is written beside `out` under a temporary name and moved into place only once its
    axes and weights have been checked, so `out` is never a half-written or broken model.
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".onnx", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot write {out} ({exc.strerror or exc}); choose a writable --out path") from None
    tmp = Path(tmp_name)
    try:
        _trace_to_onnx(model.eval(), spec, tmp)
        proto = onnx.load(str(tmp))
        set_metadata(proto, {METADATA_KEY: spec.to_json(), **(metadata or {})})
        onnx.save(proto, str(tmp))
        check_saved_graph(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; a model is for everyone to read
        os.replace(tmp, out)
    except OSError as exc:
        raise InputError(f"cannot write {out} ({exc.strerror or exc}); choose a writable --out path") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _trace_to_onnx(model: torch.nn.Module, spec: FeatureSpec, path: Path) -> None:
    example = torch.zeros(1, spec.window, spec.feature_size)
    inputs, outputs = [INPUT_NAME], [OUTPUT_NAME]
    axes = {INPUT_NAME: {0: BATCH_AXIS, 1: TIME_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}}
    args = (example,)
    if spec.appearance:  # one step of a fused model: the newest crop in, its embedding out
        from emoview.train.model import FusedStep

        model = FusedStep(model).eval()
        args = (example, torch.zeros(1, 1, spec.crop, spec.crop), torch.zeros(1, spec.window, spec.embedding))
        inputs += [CROP_INPUT, EMBEDDINGS_INPUT]
        outputs += [EMBEDDING_OUTPUT]
        axes.update({CROP_INPUT: {0: BATCH_AXIS}, EMBEDDINGS_INPUT: {0: BATCH_AXIS, 1: TIME_AXIS}, EMBEDDING_OUTPUT: {0: BATCH_AXIS}})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and LSTM batch-size notes
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    _keep_features_input(path, spec)


def _keep_features_input(path: Path, spec: FeatureSpec) -> None:
    """Put back the landmark input a crop-only network never reads: the exporter drops unused
    inputs, and the runtime feeds every model the same inputs whatever it reads of them."""
    proto = onnx.load(str(path))
    if any(i.name == INPUT_NAME for i in proto.graph.input):
        return
    features = onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [BATCH_AXIS, TIME_AXIS, spec.feature_size])
    proto.graph.input.insert(0, features)
    onnx.save(proto, str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def set_metadata(proto: onnx.ModelProto, metadata: dict[str, object]) -> None:
    """Replace the model's metadata_props: strings as they are, anything else as JSON; and record
    the digest of the weights the proto holds now, which loading checks (`realtime/weights.py`)."""
    del proto.metadata_props[:]
    for key, value in {**metadata, WEIGHTS_KEY: weights_sha256(proto.SerializeToString())}.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def check_saved_graph(path: str | os.PathLike) -> None:
    """Fail loudly unless the file has symbolic batch and time axes, opset >= 17 and inline weights."""
    proto = onnx.load(str(path), load_external_data=False)
    problems = []
    names = [i.name for i in proto.graph.input]
    # features, and a fused model's embeddings, have symbolic (batch, time); its crop a symbolic batch
    for input_name, rank, symbolic in ((INPUT_NAME, 3, (BATCH_AXIS, TIME_AXIS)), (EMBEDDINGS_INPUT, 3, (BATCH_AXIS, TIME_AXIS)),
                                       (CROP_INPUT, 4, (BATCH_AXIS,))):
        if input_name not in names:
            if input_name == INPUT_NAME:
                problems.append(f"no input named {INPUT_NAME!r}")
            continue
        dims = proto.graph.input[names.index(input_name)].type.tensor_type.shape.dim
        if len(dims) != rank:
            problems.append(f"input {input_name} has {len(dims)} axes, not {rank}")
            continue
        for axis, name in enumerate(symbolic):
            if not dims[axis].dim_param or dims[axis].HasField("dim_value"):
                fixed = dims[axis].dim_value if dims[axis].HasField("dim_value") else "unnamed"
                problems.append(f"{name} axis is fixed ({fixed}), not symbolic, in input {input_name}")
    outputs = [o for o in proto.graph.output if o.name == OUTPUT_NAME]
    if not outputs:
        problems.append(f"no output named {OUTPUT_NAME!r}")
    elif not outputs[0].type.tensor_type.shape.dim[0].dim_param:
        problems.append("output batch axis is fixed, not symbolic")
    opset = default_opset(proto)
    if opset < OPSET:
        problems.append(f"opset {opset} < {OPSET}")
    if any(uses_external_data(t) for t in proto.graph.initializer):
        problems.append("weights are stored outside the file")
    if problems:
        raise ExportError(f"exported graph {path} is unusable: {'; '.join(problems)}; this is a bug in export")


def default_opset(proto: onnx.ModelProto) -> int:
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
