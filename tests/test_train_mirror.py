"""Mirror augmentation swaps left and right, checked against MediaPipe on real flipped images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoview.realtime.faces import StillFaceFinder, read_image
from emoview.realtime.layouts import IBUG68_FROM_MP478, IBUG68_MIRROR
from emoview.train.augment import mirror_blendshapes, mirror_points
from emoview.train.mirror_table import BLENDSHAPE_MIRROR, BLENDSHAPE_NAMES, MP478_MIRROR

MP_RIGHT_EYE, MP_LEFT_EYE = [33, 133], [263, 362]  # outer/inner corners (subject's right = image left)


@pytest.mark.parametrize("layout,size", [("mp478", 478), ("ibug68", 68)])
def test_mirroring_twice_is_identity(layout, size):
    points = np.random.default_rng(0).normal(size=(5, size, 3)).astype(np.float32)
    once = mirror_points(points, layout)
    assert not np.allclose(once, points)
    assert np.array_equal(mirror_points(once, layout), points)


def test_tables_are_involutions_and_consistent():
    m = np.array(MP478_MIRROR)
    assert sorted(m) == list(range(478)) and np.array_equal(m[m], np.arange(478))
    assert m[33] == 263 and m[133] == 362 and m[2] == 2  # eye corners swap, nose base stays
    # the iBUG-68 table and the MediaPipe table agree through the documented mapping
    for k in range(68):
        assert MP478_MIRROR[IBUG68_FROM_MP478[k]] == IBUG68_FROM_MP478[IBUG68_MIRROR[k]]


def test_blendshape_mirror_swaps_left_and_right():
    shapes = np.arange(52, dtype=np.float32)
    mirrored = mirror_blendshapes(shapes)
    names = BLENDSHAPE_NAMES
    assert names[0] == "_neutral" and len(names) == 52
    for i, name in enumerate(names):
        partner = name.replace("Left", "#").replace("Right", "Left").replace("#", "Right")
        assert names[int(mirrored[i])] == partner
    assert np.array_equal(mirror_blendshapes(mirrored), shapes)
    assert BLENDSHAPE_MIRROR[names.index("mouthSmileLeft")] == names.index("mouthSmileRight")


@pytest.fixture(scope="module")
def face_and_flip(shared, face_model):
    path = sorted((shared / "data" / "ckplus48" / "happy").iterdir())[0]
    image = read_image(path)
    with StillFaceFinder(face_model) as finder:
        original = finder.find(image)[0]
        flipped = finder.find(cv2.flip(image, 1))[0]
    return image, original, flipped


def test_mirrored_left_eye_lands_on_the_right_eye(face_and_flip):
    image, original, flipped = face_and_flip
    mirrored = mirror_points(original.points, "mp478")
    mirrored[:, 0] += image.shape[1]  # x -> width - x: the flipped image's pixel frame
    eye = np.linalg.norm(original.points[33, :2] - original.points[263, :2])
    # the right eye of the mirrored face is where MediaPipe finds the right eye in the flipped image
    assert np.linalg.norm(mirrored[MP_RIGHT_EYE, :2] - flipped.points[MP_RIGHT_EYE, :2], axis=1).max() < 0.1 * eye
    # ... and it came from the original's left eye
    assert np.allclose(mirrored[MP_RIGHT_EYE, 1], original.points[MP_LEFT_EYE, 1])
    residual = np.linalg.norm(mirrored[:, :2] - flipped.points[:, :2], axis=1).mean() / eye
    naive = np.linalg.norm(-original.points[:, :1] + image.shape[1] - flipped.points[:, :1], axis=1).mean() / eye
    assert residual < 0.05 and naive > 5 * residual  # negating x alone is far off
