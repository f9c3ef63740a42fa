"""Small faces in video (issue #14) on the crowd fixture: 8 real faces 60-250 px in a 1080p video,
one entering at 2 s, one passing in front of another. Every face is found in nearly every frame
where it is in view after its first second, the late one within a second, and no id swaps.

The finder waits for its discovery thread here (`wait_for_discovery`), so what is found does not
depend on how busy the machine is; the live pipeline never waits, and finds a face a search later."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from crowd import iou, score

from emoview.realtime.discovery import Discovery
from emoview.realtime.face_search import FaceSearch
from emoview.realtime.faces import FaceLandmarker
from emoview.realtime.tracking import FaceTracker
from emoview.realtime.video_faces import VideoFaceFinder


@pytest.fixture(scope="module")
def tracked(crowd, face_model):
    """Per frame, (track id, box) of every face, and how many frames the full-frame landmarker alone found each face in."""
    capture = cv2.VideoCapture(str(crowd.video))
    tracker = FaceTracker(window=5, features=4)
    found, alone = [], []
    with VideoFaceFinder(face_model, max_faces=8, wait_for_discovery=True) as finder, \
            FaceLandmarker(face_model, max_faces=8, video=True) as landmarker:
        for frame_truth in crowd.truth["frames"]:
            ok, frame = capture.read()
            assert ok
            ts = frame_truth["t_ms"]
            tracks = tracker.update(finder.detect(frame, int(ts)), ts)
            found.append([(t.id, list(t.face.box)) for t in tracks])
            alone.append([list(f.box) for f in landmarker.detect(frame, int(ts))])
    capture.release()
    return found, alone


def test_every_face_is_found_in_95_percent_of_its_frames_without_id_swaps(crowd, tracked):
    found, alone = tracked
    result = score(crowd.truth, found)
    for face_id, entry in result["faces"].items():
        assert entry["ratio"] >= 0.95, (face_id, entry)
    assert result["swaps"] == []
    # what the issue is about: the full-frame landmarker alone finds at most the largest faces
    baseline = score(crowd.truth, [[(i, box) for i, box in enumerate(boxes)] for boxes in alone])
    assert sum(entry["ratio"] >= 0.95 for entry in baseline["faces"].values()) <= 2


def test_a_late_face_is_found_within_a_second(crowd, tracked):
    found, _ = tracked
    fps = crowd.truth["fps"]
    late = [face for face in crowd.truth["faces"] if face["enter_frame"] > 0]
    assert late  # the fixture has one (face 3 at 2 s)
    for face in late:
        fid, enter = str(face["id"]), face["enter_frame"]
        first = next(k for k in range(enter, len(found))
                     if any(iou(crowd.truth["frames"][k]["faces"][fid]["box"], box) >= 0.3 for _, box in found[k]))
        assert first - enter <= fps, f"face {fid} found {(first - enter) / fps:.2f} s after it entered"


def test_ids_hold_through_the_crossing(crowd, tracked):
    found, _ = tracked
    crossing = crowd.truth["crossing"]
    assert crossing is not None
    result = score(crowd.truth, found)
    for face_id in (str(crossing["front"]), str(crossing["back"])):
        assert len(result["faces"][face_id]["tracks"]) == 1, (face_id, result["faces"][face_id])
    front, back = (result["faces"][str(crossing[k])]["tracks"][0] for k in ("front", "back"))
    assert front != back


def test_discovery_searches_the_newest_offered_frame_in_its_thread_and_stops(face_model, samples):
    group = cv2.imread(str(samples / "multi_face.jpg"))
    blank = np.zeros_like(group)
    with FaceSearch(face_model) as search:
        discovery = Discovery(search, interval_ms=400)
        assert discovery.take() is None
        discovery.offer(blank, 0.0)
        assert not discovery.due(100.0) and discovery.due(400.0)
        discovery.offer(group, 400.0)  # replaces the blank frame if the thread has not started on it yet
        assert discovery.wait_idle(timeout=60)
        found = discovery.take()
        assert found.timestamp_ms == 400.0 and len(found.boxes) == 5
        assert discovery.take() is None  # a result is taken once
        thread = discovery._thread
        discovery.close()
        assert not thread.is_alive()


def test_a_failed_search_reaches_the_frame_loop(face_model):
    with FaceSearch(face_model) as search:
        with Discovery(search) as discovery:
            discovery.offer(np.zeros((0, 0, 3), np.uint8), 0.0)  # no picture: cv2 refuses it in the thread
            assert discovery.wait_idle(timeout=60)
            with pytest.raises(cv2.error):
                discovery.take()
            assert discovery.take() is None  # raised once
