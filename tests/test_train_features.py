"""Training's batched features are the runtime's features, and augmentation keeps faces faces."""

from __future__ import annotations

import numpy as np
import pytest

from emoview.realtime.faces import StillFaceFinder, read_image
from emoview.realtime.spec import FeatureSpec
from emoview.train.augment import Motion, pad_window, sliding_windows, synthetic_windows
from emoview.train.features import batch_features
from emoview.train.read_ravdess import read_openface_csv

LABELS = ("a", "b")
SPECS = [
    dict(),
    dict(align="roll"),
    dict(dims=2, align="roll"),
    dict(layout="ibug68"),
    dict(layout="ibug68", dims=2, align="roll", blendshapes=False),
]


@pytest.fixture(scope="module")
def faces(shared, face_model):
    root = shared / "data"
    paths = [sorted((root / "ckplus48" / c).iterdir())[0] for c in ("happy", "surprise")]
    paths += [sorted((root / "fer2013" / "val" / c).iterdir())[0] for c in ("angry", "sad")]
    with StillFaceFinder(face_model) as finder:
        found = [finder.find(read_image(p)) for p in paths]
    assert all(found), "MediaPipe should find these faces"
    return np.stack([f[0].points for f in found]), np.stack([f[0].blendshapes for f in found])


@pytest.mark.parametrize("kw", SPECS)
def test_batch_features_equal_the_runtime_spec(faces, kw):
    points, shapes = faces
    spec = FeatureSpec(labels=LABELS, **kw)
    pts = np.stack([spec.select_points(p) for p in points])
    rng = np.random.default_rng(1)
    seq, seq_shapes = synthetic_windows(pts, shapes if spec.blendshapes else None, spec, 6, rng, Motion())
    flat = seq.reshape((-1,) + seq.shape[2:])
    flat_shapes = np.repeat(shapes, 6, axis=0) if seq_shapes is None else seq_shapes.reshape(-1, 52)
    for batch, batch_shapes in ((pts, shapes), (flat, flat_shapes)):
        use = batch_shapes if spec.blendshapes else [None] * len(batch)
        got = batch_features(spec, batch, batch_shapes if spec.blendshapes else None)
        want = np.stack([spec.frame_features(p, s) for p, s in zip(batch, use)])
        assert got.shape == (len(batch), spec.feature_size)
        np.testing.assert_allclose(got, want, atol=2e-6)


def test_degenerate_faces_give_zeros_like_the_runtime():
    spec = FeatureSpec(labels=LABELS)
    flat = np.zeros((2, 478, 3), np.float32)
    got = batch_features(spec, flat, np.zeros((2, 52)))
    assert np.array_equal(got, np.stack([spec.frame_features(p, np.zeros(52)) for p in flat]))


def test_synthetic_windows_move_but_keep_the_expression(faces):
    points, shapes = faces
    spec = FeatureSpec(labels=LABELS)
    still = batch_features(spec, points, shapes)
    seq, seq_shapes = synthetic_windows(points, shapes, spec, 15, np.random.default_rng(0), Motion())
    assert seq.shape == (4, 15, 478, 3) and seq_shapes.shape == (4, 15, 52)
    assert np.abs(seq - points[:, None]).mean() > 0.5  # the head moved (pixels)
    moved = batch_features(spec, seq.reshape(-1, 478, 3), seq_shapes.reshape(-1, 52)).reshape(4, 15, -1)
    # after the spec's normalization each frame is still closest to its own face
    distance = np.linalg.norm(moved.mean(axis=1)[:, None] - still[None], axis=-1)
    assert np.array_equal(distance.argmin(axis=1), np.arange(4))


def test_onset_starts_near_neutral_and_ends_at_the_face(faces):
    points, shapes = faces
    spec = FeatureSpec(labels=LABELS)
    from emoview.train.features import batch_normalize

    neutral = (batch_normalize(points[2:3], spec)[0].astype(np.float64), shapes[2])
    still = Motion(pose_deg=0, drift_deg=0, shake_deg=0, shift=0, scale=0, point_jitter=0, blend_jitter=0, onset_prob=1.0)
    seq, seq_shapes = synthetic_windows(points[:1], shapes[:1], spec, 12, np.random.default_rng(0), still, neutral)
    first = batch_features(spec, seq[0, :1], seq_shapes[0, :1])
    last = batch_features(spec, seq[0, -1:], seq_shapes[0, -1:])
    target = batch_features(spec, points[2:3], shapes[2:3])
    own = batch_features(spec, points[:1], shapes[:1])
    np.testing.assert_allclose(last, own, atol=1e-4)
    assert np.linalg.norm(first - target) < 0.2 * np.linalg.norm(own - target)


def test_sliding_windows_on_a_real_track(shared):
    track = read_openface_csv(shared / "data" / "ravdess" / "01-01-03-02-01-01-01.first60frames.csv")
    spans = sliding_windows(len(track.points), 15, 5)
    assert spans[0] == (0, 15) and spans[-1] == (45, 60) and len(spans) == 10
    assert sliding_windows(60, 90, 15) == [(0, 60)]
    padded = pad_window(track.points, 90)
    assert padded.shape == (90, 68, 2) and np.array_equal(padded[-1], track.points[-1])
