"""A damaged emotion model is refused: the weights digest recorded at export, and the shipped file's sha256.

The damage is real: bytes flipped inside the largest weight tensor of the shipped model, found in
the file with onnx's own parser, so the digest reader is checked against an independent one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from emoview.export.onnx_export import set_metadata
from emoview.models import DEFAULT_MODEL
from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.errors import ModelError
from emoview.realtime.weights import WEIGHTS_KEY, check_weights, record_path, weights_sha256

from conftest import REPO


def digest_with_onnx(path: Path) -> str:
    """The documented definition, computed from onnx's parse of the file (every weight is raw_data here)."""
    digest = hashlib.sha256()
    for tensor in sorted(onnx.load(str(path)).graph.initializer, key=lambda t: t.name):
        assert tensor.raw_data and not tensor.float_data
        name, dims = tensor.name.encode(), list(tensor.dims)
        digest.update(struct.pack("<q", len(name)) + name + struct.pack(f"<qq{len(dims)}q", tensor.data_type, len(dims), *dims))
        digest.update(struct.pack("<qq", 9, len(tensor.raw_data)) + tensor.raw_data)
    return digest.hexdigest()


def flip_weight_bytes(src: Path, dst: Path, count: int = 64) -> Path:
    """A copy of `src` with `count` bytes inverted in the middle of its largest initializer."""
    data = bytearray(src.read_bytes())
    largest = max(onnx.load(str(src)).graph.initializer, key=lambda t: len(t.raw_data))
    start = bytes(data).index(largest.raw_data) + len(largest.raw_data) // 2
    for i in range(start, start + count):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def without_digest(src: Path, dst: Path) -> Path:
    """A copy of `src` as exported before weight digests existed (no `emoview.weights_sha256`)."""
    proto = onnx.load(str(src))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != WEIGHTS_KEY]
    del proto.metadata_props[:]
    for key, value in kept:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture
def stamped(tmp_path) -> Path:
    """The shipped model with a weights digest in its metadata, recorded the way export records it."""
    proto = onnx.load(str(DEFAULT_MODEL))
    set_metadata(proto, {p.key: p.value for p in proto.metadata_props})
    path = tmp_path / "stamped.onnx"
    onnx.save(proto, str(path))
    return path


def emoview(*args):
    env = {k: v for k, v in os.environ.items() if k != "EMOVIEW_DEBUG"}
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True,
                          timeout=240, cwd=REPO, env=env)


def test_export_records_the_digest_of_the_weights_it_wrote(random_model):
    recorded = EmotionClassifier(random_model).metadata[WEIGHTS_KEY]
    assert recorded == digest_with_onnx(random_model) == weights_sha256(random_model.read_bytes())


def test_the_digest_ignores_the_metadata_and_follows_every_weight_byte(stamped, tmp_path):
    proto = onnx.load(str(stamped))
    proto.metadata_props.add(key="note", value="a user's note does not change the weights")
    noted = tmp_path / "noted.onnx"
    onnx.save(proto, str(noted))
    assert weights_sha256(noted.read_bytes()) == weights_sha256(stamped.read_bytes())
    damaged = flip_weight_bytes(stamped, tmp_path / "damaged.onnx", count=1)
    assert weights_sha256(damaged.read_bytes()) != weights_sha256(stamped.read_bytes())


def test_predict_refuses_a_model_with_flipped_weight_bytes_in_one_line(stamped, tmp_path, samples, face_model):
    image = samples / "single_face.jpg"
    good = emoview("predict", image, "--model", stamped, "--face-model", face_model)
    assert good.returncode == 0, good.stderr
    damaged = flip_weight_bytes(stamped, tmp_path / "damaged.onnx")
    run = emoview("predict", image, "--model", damaged, "--face-model", face_model)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith(f"emoview: error: {damaged} is damaged: its weights have sha256 ")
    assert "recorded at export; copy or download the model again" in lines[0]
    assert run.stdout == ""


def test_the_damage_is_real_and_an_older_model_without_a_digest_still_loads(tmp_path):
    """Without a digest (exported before it existed) a copy loads: that is the case the digest closes."""
    copy = without_digest(DEFAULT_MODEL, tmp_path / "old.onnx")
    damaged = flip_weight_bytes(copy, tmp_path / "old-damaged.onnx", count=200_000)  # half the largest tensor: an ensemble shrugs off a few
    model = EmotionClassifier(copy)
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((16, 1, model.spec.feature_size)).astype(np.float32)
    crops = rng.integers(0, 256, (16, model.spec.crop, model.spec.crop), dtype=np.uint8) if model.spec.crop else None
    answers = model.predict(windows, crops).argmax(1)
    assert (EmotionClassifier(damaged).predict(windows, crops).argmax(1) != answers).any()
    assert check_weights(copy, model.metadata).verified.startswith("not checked")


def test_the_shipped_model_matches_its_recorded_sha256():
    record = record_path(DEFAULT_MODEL).read_text().split()
    assert record == [hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest(), DEFAULT_MODEL.name]
    assert "file matches the shipped sha256" in check_weights(DEFAULT_MODEL, EmotionClassifier().metadata).verified


def test_a_damaged_shipped_model_is_refused_even_without_a_digest(tmp_path, monkeypatch):
    shipped = tmp_path / "models" / DEFAULT_MODEL.name
    shipped.parent.mkdir()
    flip_weight_bytes(without_digest(DEFAULT_MODEL, tmp_path / "old.onnx"), shipped)
    shutil.copy(record_path(DEFAULT_MODEL), record_path(shipped))
    monkeypatch.setattr("emoview.models.DEFAULT_MODEL", shipped)
    with pytest.raises(ModelError, match=r"^the shipped model .* has sha256 [0-9a-f]{12}…, not the [0-9a-f]{12}… recorded in .*; reinstall emoview"):
        EmotionClassifier()
