"""The tiled face search: tiles that leave no face out, boxes merged one per face, the smallest-face
bound, and the five people of multi_face.jpg (a single look at the whole photo finds two)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoview.realtime.face_search import TILE_FACES, Box, FaceSearch, merge_boxes, tiles
from emoview.realtime.faces import FaceLandmarker, StillFaceFinder, crop_around, _unframe

# the five faces of multi_face.jpg (x0, y0, x1, y1), by eye
PEOPLE = [(215, 78, 313, 176), (311, 259, 414, 361), (439, 231, 520, 312), (530, 336, 634, 440), (684, 316, 793, 425)]


def centre(box):
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def inside(point, box):
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_merging_keeps_one_box_per_face_and_absorbs_cut_faces():
    face_a = [Box(100, 100, 160, 160, 0.9), Box(104, 98, 162, 158, 0.8), Box(96, 102, 158, 164, 0.7)]  # three tiles, one face
    cut = Box(100, 100, 124, 160, 0.6)  # the left part of face a, from a tile whose edge cut it
    face_b = [Box(170, 100, 230, 160, 0.95)]  # a neighbour, touching but not overlapping much
    merged = merge_boxes(face_a + [cut] + face_b)
    assert len(merged) == 2
    b, a = merged  # best score first
    assert (b.x0, b.y0, b.x1, b.y1, b.score) == (170, 100, 230, 160, 0.95)
    assert a.score == 0.9
    assert 99 <= a.x0 <= 101 and 158 <= a.x1 <= 161  # the mean of the three views, the cut half left out
    assert merge_boxes([]) == []


@pytest.mark.parametrize("width, height, min_face", [(1000, 667, 32), (1920, 1080, 60), (640, 360, 32), (480, 900, 40)])
def test_tiles_hold_every_face_from_the_smallest_up_whole_in_some_tile(width, height, min_face):
    rng = np.random.default_rng(0)
    covering = tiles(width, height, min_face)
    assert covering[-1] == (0, 0, max(width, height))  # the whole picture last, for faces too big for any tile
    for _ in range(1000):
        side = float(rng.uniform(min_face, 0.7 * min(width, height)))
        x, y = rng.uniform(0, width - side), rng.uniform(0, height - side)
        # some tile holds the face whole, at a size the detector finds (1/8 to 3/4 of the tile)
        fits = [
            s for tx, ty, s in covering
            if tx <= x and ty <= y and x + side <= tx + s and y + side <= ty + s and s / 8 <= side <= 0.75 * s
        ]
        assert fits, (x, y, side)


def test_the_smallest_face_bounds_the_tiles():
    assert len(tiles(1920, 1080, 24)) > len(tiles(1920, 1080, 32)) > len(tiles(1920, 1080, 64)) > len(tiles(1920, 1080, 300)) == 1
    assert min(side for _, _, side in tiles(1920, 1080, 60)) == TILE_FACES * 60


@pytest.fixture(scope="module")
def group(samples):
    return cv2.imread(str(samples / "multi_face.jpg"))


def test_the_search_finds_all_five_people_once(face_model, group):
    with FaceSearch(face_model) as search:
        boxes = search.find(group)
    assert len(boxes) == 5
    for person in PEOPLE:  # each person's face holds the centre of exactly one box
        assert sum(inside(centre(b.ints), person) for b in boxes) == 1


def test_the_smallest_face_setting_bounds_what_is_found(face_model, group):
    small = cv2.resize(group, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)  # faces about 37-49 px
    with FaceSearch(face_model, min_face=24) as search:
        found = search.find(small)
    assert len(found) >= 4 and all(b.side >= 24 for b in found)
    with FaceSearch(face_model, min_face=64) as search:
        bounded = search.find(small)  # every face there is smaller than 64 px: at most a loose box from the coarsest look
        assert len(bounded) < len(found) and all(b.side >= 64 for b in bounded)
        assert len(search.find(group)) == 5  # and the same search still finds the faces of 80 px and more


def test_still_finder_landmarks_every_person_on_a_cut_out(face_model, group):
    with StillFaceFinder(face_model, max_faces=20) as finder:
        faces = finder.find(group)
        assert len(finder.find(group[:, :400])) == 2  # the same search on a part of the photo
    assert len(faces) == 5
    for person in PEOPLE:
        (face,) = [f for f in faces if inside(centre(person), f.box)]
        nose = face.points[1, :2]  # landmark 1: the tip of the nose, in the photo's pixels
        assert inside(nose, person)
        assert face.points.shape == (478, 3) and face.blendshapes.shape == (52,)
    with FaceLandmarker(face_model, max_faces=20, video=False) as whole:
        assert len(whole.detect(group)) < 5  # why the search exists: one look at the whole photo misses people


def test_crop_around_and_unframe_are_inverse(group):
    box = (530, 336, 634, 440)
    cut, scale, pad = crop_around(group, box, 2.0, 256)
    assert cut.shape == (256, 256, 3) and scale == pytest.approx(256 / 208)
    # the box's centre is the cut-out's centre, and a pixel maps back where it came from
    np.testing.assert_allclose(np.array(centre(box)) * scale + pad, (128, 128), atol=1e-6)
    assert np.abs(cut[128, 128].astype(int) - group[388, 582].astype(int)).max() <= 12
    from emoview.realtime.faces import Face

    points = np.array([[128.0, 128.0, 10.0]] * 478, np.float32)
    back = _unframe(Face(points, np.zeros(52, np.float32), (0, 0, 255, 255)), scale, pad, group.shape)
    np.testing.assert_allclose(back.points[0, :2], centre(box), atol=1e-3)
    assert back.points[0, 2] == pytest.approx(10.0 / scale)
    cut, _, _ = crop_around(group, (0, 0, 50, 50), 2.0, 100)  # past the photo's corner: black
    assert cut[:24].max() == 0 and cut[:, :24].max() == 0 and cut[26:, 26:].min() > 0  # 25 px past each edge


def test_every_face_of_the_group_still_is_found_once(crowd, face_model):
    """The crowd fixture's group photo: 7 real faces 60-250 px at 1920x1080, none covered."""
    from crowd import iou

    with StillFaceFinder(face_model, max_faces=20) as finder:
        faces = finder.find(cv2.imread(str(crowd.still)))
    truth = [face["box"] for face in crowd.still_truth["faces"]]
    assert len(faces) == len(truth) == 7
    for box in truth:
        assert sum(iou(box, face.box) >= 0.7 for face in faces) == 1, box


def test_a_head_tilted_far_in_a_small_crop_is_found_by_turning_the_crop(shared, face_model, monkeypatch):
    """A FER2013 val face (FER+: angry) that none of the upright framings finds: a turned one does,
    and its landmarks come back to the crop's own pixels (the aligned crop then shows a face)."""
    from emoview.realtime import faces
    from emoview.realtime.faces import read_image
    from emoview.realtime.spec import FeatureSpec

    image = read_image(shared / "data" / "fer2013" / "val" / "angry" / "PublicTest_97098619.jpg")
    with StillFaceFinder(face_model) as finder:
        found = finder.find(image)
        monkeypatch.setattr(faces, "TURNED_ATTEMPTS", ())
        assert finder.find(image) == []
    assert len(found) == 1
    points = found[0].points
    assert (points[:, :2] > -8).all() and (points[:, :2] < 56).all()  # in the 48x48 crop (a little past its edge)
    x0, y0, x1, y1 = found[0].box
    assert 0 <= x0 < x1 <= 47 and 0 <= y0 < y1 <= 47 and (x1 - x0) * (y1 - y0) > 20 * 20
    spec = FeatureSpec(labels=("a", "b"), crop=48, embedding=8)
    assert spec.face_crop(image, points).std() > 20


def test_unturning_a_face_puts_its_points_back():
    from emoview.realtime.faces import Face, _unturn

    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(80, 180, (478, 2)), rng.uniform(-5, 5, 478)]).astype(np.float32)
    turn = cv2.getRotationMatrix2D((128, 128), 40, 1.0)
    turned = points.copy()
    turned[:, :2] = points[:, :2] @ turn[:, :2].T + turn[:, 2]
    back = _unturn(Face(turned, np.zeros(52, np.float32), (0, 0, 255, 255)), turn, (256, 256, 3))
    np.testing.assert_allclose(back.points, points, atol=1e-3)
    assert back.box == (int(np.floor(points[:, 0].min())), int(np.floor(points[:, 1].min())),
                        int(np.ceil(points[:, 0].max())), int(np.ceil(points[:, 1].max())))
