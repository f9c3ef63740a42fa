"""Is this emotion model the one that was exported? A digest of its weights, checked at load time.

A model with flipped bytes in its weights still loads in ONNX Runtime and answers, wrongly (one
damaged copy said "happy" to everything). So export records sha256 over the graph's initializers
in the model's own metadata (`emoview.weights_sha256`), and loading recomputes it and refuses a
mismatch. The shipped model is also checked as a whole file against the sha256 recorded next to it
(`emotion.onnx.sha256`, `sha256sum -c` format), which covers models exported before the digest.

Why the initializers, read with a tiny protobuf wire-format reader:
- ONNX Runtime cannot list initializer bytes, and `onnx` is a training extra: `pip install .` has
  no protobuf model classes, so the runtime reads the few fields it needs itself (ModelProto.graph
  -> GraphProto.initializer -> TensorProto name, data_type, dims and data fields).
- A digest of the whole file would change with the metadata it is stored in, and with any tool
  that rewrites the metadata (quantization copies it, a user may add a note); the weights do not.
  Tensors are taken in name order, each as its name, dtype, shape and stored data fields (raw_data,
  or float_data etc. as encoded), so the digest is what the network computes with, not the layout.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from emoview.realtime.errors import ModelError
from emoview.realtime.files import sha256_of, write_text

WEIGHTS_KEY = "emoview.weights_sha256"

# field numbers in onnx.proto
_MODEL_GRAPH, _MODEL_METADATA = 7, 14
_GRAPH_INITIALIZER = 5
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME = 1, 2, 8
_TENSOR_DATA = {4, 5, 6, 7, 9, 10, 11, 13, 14}  # typed data, raw_data, external_data, data_location
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, object]]:
    """(field number, value) of one message: an int for varints, a memoryview for the others."""
    i, end = 0, len(buf)
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire in (1, 2, 5):
            size = {1: 8, 5: 4}.get(wire)
            if size is None:
                size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
            if i > end:
                raise WireError("a field runs past the end of the message")
        else:
            raise WireError(f"unsupported wire type {wire}")
        yield number, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _dims(value) -> list[int]:
    """One dim (varint) or several (packed)."""
    if isinstance(value, int):
        return [_signed(value)]
    out, i = [], 0
    while i < len(value):
        dim, i = _varint(value, i)
        out.append(_signed(dim))
    return out


def _submessages(buf: memoryview, number: int) -> Iterator[memoryview]:
    for field, value in _fields(buf):
        if field == number and isinstance(value, memoryview):
            yield value


def weights_sha256(model: bytes | memoryview) -> str:
    """sha256 of a serialized ONNX ModelProto's initializers; raises WireError if it is not one."""
    tensors = []
    for graph in _submessages(memoryview(model), _MODEL_GRAPH):
        for tensor in _submessages(graph, _GRAPH_INITIALIZER):
            name, dtype, dims, data = b"", 0, [], []
            for field, value in _fields(tensor):
                if field == _TENSOR_NAME:
                    name = bytes(value)
                elif field == _TENSOR_DATA_TYPE:
                    dtype = value
                elif field == _TENSOR_DIMS:
                    dims += _dims(value)
                elif field in _TENSOR_DATA:
                    data.append((field, value))
            tensors.append((name, dtype, dims, data))
    digest = hashlib.sha256()
    for name, dtype, dims, data in sorted(tensors, key=lambda t: t[0]):
        digest.update(struct.pack("<q", len(name)) + name + struct.pack(f"<qq{len(dims)}q", dtype, len(dims), *dims))
        for field, value in data:
            if isinstance(value, int):
                digest.update(struct.pack("<qq", field, value))
            else:
                digest.update(struct.pack("<qq", field, len(value)))
                digest.update(value)
    return digest.hexdigest()


def read_metadata(model: bytes | memoryview) -> dict[str, str]:
    """A serialized ModelProto's metadata_props, as ONNX Runtime's custom_metadata_map gives them."""
    metadata = {}
    for entry in _submessages(memoryview(model), _MODEL_METADATA):
        fields = dict(_fields(entry))
        metadata[bytes(fields.get(_ENTRY_KEY, b"")).decode()] = bytes(fields.get(_ENTRY_VALUE, b"")).decode()
    return metadata


# -- the checks ------------------------------------------------------------------------------------


def shipped_model() -> Path:
    from emoview.models import DEFAULT_MODEL

    return DEFAULT_MODEL


def record_path(model: Path) -> Path:
    """Where the shipped model's file sha256 is recorded: `emotion.onnx.sha256`, beside it."""
    return model.with_name(model.name + ".sha256")


def is_shipped(path: Path) -> bool:
    try:
        return Path(path).resolve() == shipped_model().resolve()
    except OSError:
        return False


def write_record(model: Path) -> Path:
    """Record a model's file sha256 beside it (export does this when it replaces the shipped model)."""
    return write_text(record_path(model), f"{sha256_of(model)}  {model.name}\n")


@dataclass(frozen=True)
class WeightsCheck:
    """What was checked and how it went; `problem` is None when the model can be trusted."""

    digest: str | None  # the recorded weights digest, if the model has one
    verified: str  # one phrase for people: what matched, or what did not
    problem: str | None = None


def check_weights(path: str | os.PathLike, metadata: dict[str, str]) -> WeightsCheck:
    """Compare the weights with the digest recorded at export, and the shipped model's file with its record."""
    path = Path(path)
    recorded = metadata.get(WEIGHTS_KEY)
    passed = []
    if recorded:
        try:
            actual = weights_sha256(path.read_bytes())
        except WireError as exc:
            return WeightsCheck(recorded, "unreadable", f"{path} is not a well-formed ONNX file ({exc}); copy or download the model again")
        if actual != recorded:
            return WeightsCheck(
                recorded, "MISMATCH",
                f"{path} is damaged: its weights have sha256 {actual[:12]}…, not the {recorded[:12]}… recorded "
                "at export; copy or download the model again, or re-export it",
            )
        passed.append("weights match the digest recorded at export")
    if is_shipped(path):
        record = record_path(path)
        expected = (record.read_text().split() or [None])[0] if record.is_file() else None
        actual = sha256_of(path)
        if expected != actual:
            found = f"not the {expected[:12]}… recorded in {record}" if expected else f"and {record} is missing"
            return WeightsCheck(
                recorded, "MISMATCH",
                f"the shipped model {path} has sha256 {actual[:12]}…, {found}; reinstall emoview "
                f"(after replacing the model on purpose, export it with --overwrite, which updates {record.name})",
            )
        passed.append("file matches the shipped sha256")
    if not passed:
        return WeightsCheck(None, "not checked: no weights digest in the metadata (exported before emoview recorded one)")
    return WeightsCheck(recorded, "verified: " + "; ".join(passed))


def verify_weights(path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Refuse a damaged model with one line (ModelError: exit 2) before it answers anything."""
    problem = check_weights(path, metadata).problem
    if problem:
        raise ModelError(problem)
