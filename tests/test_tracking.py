"""Stable face ids on real videos, including two faces side by side that must never swap."""

import cv2
import numpy as np
import pytest

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.faces import Face, FaceLandmarker
from emoview.realtime.pipeline import Analyzer
from emoview.realtime.sources import VideoSource
from emoview.realtime.tracking import FaceTracker


def run_ids(video, face_model, model, max_faces):
    """[(frame index, id, box centre x)] for every face in every frame."""
    seen = []
    with FaceLandmarker(face_model, max_faces=max_faces) as landmarker, VideoSource(video) as source:
        analyzer = Analyzer(EmotionClassifier(model), landmarker)
        for frame in source:
            for face in analyzer.analyze(frame).faces:
                seen.append((frame.index, face.id, (face.box[0] + face.box[2]) / 2))
                assert abs(face.probabilities.sum() - 1) < 1e-4
    return seen


@pytest.fixture(scope="module")
def two_face_video(tmp_path_factory, samples):
    """Two real sample videos side by side: 1280x360, 72 frames, one face in each half."""
    path = tmp_path_factory.mktemp("video") / "two_faces.mp4"
    left, right = cv2.VideoCapture(str(samples / "single_face.mp4")), cv2.VideoCapture(str(samples / "WolfgangLanger_Pexels.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (1280, 360))
    while True:
        ok_l, a = left.read()
        ok_r, b = right.read()
        if not (ok_l and ok_r):
            break
        writer.write(np.hstack([a, b]))
    writer.release()
    return path


def test_one_face_keeps_one_id_through_a_real_video(samples, face_model, random_model):
    seen = run_ids(samples / "WolfgangLanger_Pexels.mp4", face_model, random_model, max_faces=1)
    assert len(seen) == 472
    assert {face_id for _, face_id, _ in seen} == {1}


def test_two_faces_get_two_ids_that_never_swap(two_face_video, face_model, random_model):
    seen = run_ids(two_face_video, face_model, random_model, max_faces=2)
    ids = {face_id for _, face_id, _ in seen}
    assert len(ids) == 2
    side = {}
    for _, face_id, centre_x in seen:
        side.setdefault(face_id, centre_x < 640)
        assert side[face_id] == (centre_x < 640), f"face {face_id} jumped to the other side"
    assert set(side.values()) == {True, False}
    frames_with_both = sum(1 for i in range(72) if sum(1 for f, _, _ in seen if f == i) == 2)
    assert frames_with_both >= 60


def make_face(x, y, size=100):  # noqa: E302
    return Face(points=np.zeros((478, 3), np.float32), blendshapes=np.zeros(52, np.float32), box=(x, y, x + size, y + size))


def test_tracker_matches_by_overlap_not_by_result_order():
    tracker = FaceTracker(window=5, features=4)
    a, b = tracker.update([make_face(0, 0), make_face(300, 0)], 0.0)
    swapped = tracker.update([make_face(305, 2), make_face(4, 3)], 33.0)
    assert [t.id for t in swapped] == [b.id, a.id]


def test_a_face_gone_too_long_is_forgotten_and_returns_with_a_new_id():
    tracker = FaceTracker(window=5, features=4, max_missing_s=0.5)
    (first,) = tracker.update([make_face(0, 0)], 0.0)
    tracker.update([], 200.0)
    (same,) = tracker.update([make_face(2, 0)], 400.0)
    assert same.id == first.id
    tracker.update([], 500.0)
    tracker.update([], 1000.0)
    assert tracker.tracks == {}
    (new,) = tracker.update([make_face(2, 0)], 1100.0)
    assert new.id != first.id


def test_many_faces_coming_and_going_leave_no_state_behind():
    tracker = FaceTracker(window=15, features=8, max_missing_s=0.1)
    rng = np.random.default_rng(1)
    for i in range(2000):
        faces = [make_face(int(x), int(y), 40) for x, y in rng.integers(0, 2000, size=(rng.integers(0, 5), 2))]
        tracker.update(faces, i * 33.0)
        assert len(tracker.tracks) <= 4 * 5
    tracker.update([], 2000 * 33.0 + 1000)
    assert tracker.tracks == {}


def test_ids_hold_through_a_crossing_with_the_back_face_hidden():
    """Two faces of one size move towards each other, pass (the back one hidden for half a second
    behind the front one) and go on: each keeps its id, matched by where its motion says it is."""
    tracker = FaceTracker(window=5, features=4)
    ids = {"left": set(), "right": set()}
    for k in range(60):
        t = k * 40.0
        left_x, right_x = 100 + 10 * k, 700 - 10 * k  # meet at k = 30
        faces = {"left": make_face(left_x, 200, 80)}
        if not 22 <= k <= 36:  # right passes behind left: gone for 15 frames (0.6 s)
            faces["right"] = make_face(right_x, 205, 80)
        tracks = tracker.update(list(faces.values()), t)
        for name, track in zip(faces, tracks):
            ids[name].add(track.id)
    assert len(ids["left"]) == 1 and len(ids["right"]) == 1 and ids["left"] != ids["right"]


def test_a_face_back_within_seconds_gets_its_id_and_a_new_face_elsewhere_does_not():
    tracker = FaceTracker(window=5, features=4)  # re-identification within the default 3 s
    (first,) = tracker.update([make_face(500, 300)], 0.0)
    tracker.update([], 40.0)
    (back, other) = tracker.update([make_face(530, 310), make_face(1200, 300)], 2000.0)  # 2 s hidden, moved a little
    assert back.id == first.id and other.id != first.id
    (small,) = tracker.update([make_face(900, 700, 40)], 2100.0)  # near nothing it knows, and half the size
    assert small.id not in (first.id, other.id)
