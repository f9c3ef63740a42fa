"""The feature contract: normalization invariances on a real face, and spec validation."""

import numpy as np
import pytest

from emoview.realtime.layouts import IBUG68_FROM_MP478, IBUG68_MIRROR
from emoview.realtime.spec import FeatureSpec, SpecError, normalize_points

LABELS = ("angry", "happy", "sad")


def rotation_z(degrees):
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def rotation_3d(yaw, pitch, roll):
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return ry @ rx @ rotation_z(np.degrees(r))


@pytest.mark.parametrize("align", ["roll", "rigid3d"])
def test_features_ignore_translation_scale_and_in_plane_rotation(real_face, align):
    spec = FeatureSpec(labels=LABELS, align=align)
    reference = spec.frame_features(real_face.points, real_face.blendshapes)
    centre = real_face.points.mean(axis=0)
    moved = (real_face.points - centre) @ rotation_z(23).T * 2.7 + centre + np.array([140.0, -60.0, 5.0])
    features = spec.frame_features(moved, real_face.blendshapes)
    np.testing.assert_allclose(features, reference, atol=1e-4)
    # and the features are not trivially constant: another face shape changes them
    squashed = real_face.points * np.array([1.0, 1.3, 1.0])
    assert np.abs(spec.frame_features(squashed, real_face.blendshapes) - reference).max() > 0.05


def test_rigid3d_also_ignores_head_turn_and_tilt(real_face):
    spec = FeatureSpec(labels=LABELS, align="rigid3d")
    reference = spec.frame_features(real_face.points, real_face.blendshapes)
    turned = real_face.points @ rotation_3d(25, -15, 10).T
    np.testing.assert_allclose(spec.frame_features(turned, real_face.blendshapes), reference, atol=1e-4)
    # "roll" only undoes in-plane rotation: a turned head looks different to it
    roll = FeatureSpec(labels=LABELS, align="roll")
    diff = roll.frame_features(turned, real_face.blendshapes) - roll.frame_features(real_face.points, real_face.blendshapes)
    assert np.abs(diff).max() > 0.05


def test_normalized_eyes_are_level_and_one_unit_apart(real_face):
    spec = FeatureSpec(labels=LABELS, align="roll", dims=2, blendshapes=False)
    tilted = real_face.points @ rotation_z(-30).T
    points = normalize_points(tilted, spec.layout_def, 2, "roll")
    right = points[list(spec.layout_def.right_eye)].mean(axis=0)
    left = points[list(spec.layout_def.left_eye)].mean(axis=0)
    np.testing.assert_allclose(left - right, [1.0, 0.0], atol=1e-5)
    np.testing.assert_allclose((left + right) / 2, [0.0, 0.0], atol=1e-5)


def test_ibug68_layout_from_mediapipe(real_face):
    spec = FeatureSpec(labels=LABELS, layout="ibug68", dims=2, align="roll", blendshapes=False)
    points = spec.select_points(real_face.points)
    assert points.shape == (68, 3)
    assert spec.frame_features(points).shape == (136,) == (spec.feature_size,)
    # anatomy check: the subject's right eye (iBUG 36-41) is on the image left, the chin (8) lowest
    assert points[36:42, 0].mean() < points[42:48, 0].mean()
    assert points[8, 1] == points[:17, 1].max()
    assert len(set(IBUG68_FROM_MP478)) == 68
    assert [IBUG68_MIRROR[i] for i in IBUG68_MIRROR] == list(range(68))


def test_feature_size_and_dtype(real_face):
    spec = FeatureSpec(labels=LABELS)
    features = spec.frame_features(real_face.points, real_face.blendshapes)
    assert features.dtype == np.float32 and features.shape == (478 * 3 + 52,) == (spec.feature_size,)
    assert np.isfinite(features).all()


def test_spec_round_trips_and_refuses_unknown_versions():
    spec = FeatureSpec(labels=LABELS, window=30)
    assert FeatureSpec.from_json(spec.to_json()) == spec
    data = spec.to_json().replace('"version": 1', '"version": 99')
    with pytest.raises(SpecError, match="version 99"):
        FeatureSpec.from_json(data)
    with pytest.raises(SpecError, match="unknown layout"):
        FeatureSpec(labels=LABELS, layout="dlib5")
    with pytest.raises(SpecError, match="rigid3d"):
        FeatureSpec(labels=LABELS, dims=2, align="rigid3d")
    with pytest.raises(SpecError, match="not valid JSON"):
        FeatureSpec.from_json("{oops")
    with pytest.raises(SpecError, match="does not know"):
        FeatureSpec.from_json(spec.to_json()[:-1] + ', "colour": "blue"}')


def test_blendshapes_required_when_the_spec_says_so(real_face):
    with pytest.raises(SpecError, match="blendshapes"):
        FeatureSpec(labels=LABELS).frame_features(real_face.points, None)
