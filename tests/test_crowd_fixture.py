"""The crowd media generator (tests/fixtures/crowd.py): its ground truth must match what it drew,
or every test and benchmark built on it measures against the wrong answer."""

import cv2
import numpy as np
import pytest
from crowd import iou, make_crowd_video, read_video, score

SIZE_RANGE = (60, 250)  # face heights promised at 1080 lines


def height(box):
    return box[3] - box[1]


def overlap(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


@pytest.fixture(scope="module")
def frames(crowd):
    return read_video(crowd.video)


def test_video_has_the_promised_frames_size_and_faces(crowd, frames):
    truth = crowd.truth
    assert (truth["width"], truth["height"], truth["fps"]) == (1920, 1080, 25)
    assert len(frames) == truth["frame_count"] == len(truth["frames"]) == 150
    assert frames[0].shape == (1080, 1920, 3)
    assert len(truth["faces"]) == 8 and len({f["source"] + str(f["variant"]) for f in truth["faces"]}) == 8
    heights = [f["face_height"] for f in truth["faces"]]
    assert min(heights) == pytest.approx(SIZE_RANGE[0], abs=1) and max(heights) == pytest.approx(SIZE_RANGE[1], abs=1)
    for frame in truth["frames"]:
        for face in frame["faces"].values():
            if face["box"]:
                x0, y0, x1, y1 = face["box"]
                assert 0 <= x0 < x1 <= 1920 and 0 <= y0 < y1 <= 1080
                assert 0.75 * SIZE_RANGE[0] <= height(face["box"]) <= 1.25 * SIZE_RANGE[1]


def test_late_face_is_absent_before_its_entry_and_drawn_from_it(crowd, frames):
    late = [f for f in crowd.truth["faces"] if f["enter_frame"] > 0]
    assert [(f["id"], f["enter_s"]) for f in late] == [(3, 2.0)]
    enter = late[0]["enter_frame"]
    for k, frame in enumerate(crowd.truth["frames"]):
        face = frame["faces"]["3"]
        assert (face["box"] is not None) == face["visible"] == (k >= enter), k
    x0, y0, x1, y1 = crowd.truth["frames"][enter]["faces"]["3"]["box"]
    before, after = (frames[k][y0:y1, x0:x1].astype(int) for k in (enter - 1, enter))
    assert np.abs(after - before).mean() > 20  # a face appeared where there was only background


def test_crossing_one_face_passes_in_front_of_the_other(crowd):
    truth = crowd.truth
    front, back = str(truth["crossing"]["front"]), str(truth["crossing"]["back"])
    frames = truth["frames"]
    side = [np.sign(sum(f["faces"][front]["box"][::2]) - sum(f["faces"][back]["box"][::2])) for f in frames]
    assert side[0] != side[-1]  # they swapped sides
    hidden = [k for k, f in enumerate(frames) if not f["faces"][back]["visible"]]
    assert hidden and max(frames[k]["faces"][back]["occluded"] for k in hidden) > 0.9
    assert frames[0]["faces"][back]["visible"] and frames[-1]["faces"][back]["visible"]
    assert all(f["faces"][front]["visible"] for f in frames)  # the one in front is never covered
    for frame in frames:  # nobody else ever overlaps
        boxes = {fid: f["box"] for fid, f in frame["faces"].items() if f["box"]}
        pairs = [(a, b) for a in boxes for b in boxes if a < b and {a, b} != {front, back}]
        assert not any(overlap(boxes[a], boxes[b]) for a, b in pairs)


def test_group_still_has_six_to_eight_faces_of_different_sizes(crowd):
    image = cv2.imread(str(crowd.still))
    truth = crowd.still_truth
    assert image.shape == (truth["height"], truth["width"], 3)
    boxes = [f["box"] for f in truth["faces"]]
    assert 6 <= len(boxes) <= 8
    assert min(map(height, boxes)) < 80 and max(map(height, boxes)) > 200
    assert not any(overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_faces_read_as_faces_where_the_truth_says(crowd, face_model):
    """Not a test of emoview's reach (small faces in a big frame are issue #14's work): each of
    the larger pasted faces, cut out with room around it, is found by the landmarker, and its
    box is the one in the truth."""
    from emoview.realtime.faces import FaceLandmarker

    image = cv2.imread(str(crowd.still))
    larger = [f for f in crowd.still_truth["faces"] if f["face_height"] >= 100]
    assert len(larger) >= 3
    with FaceLandmarker(face_model, max_faces=2, video=False) as landmarker:
        for face in larger:
            x0, y0, x1, y1 = face["box"]
            pad = (y1 - y0)
            cx0, cy0 = max(0, x0 - pad), max(0, y0 - pad)
            found = landmarker.detect(np.ascontiguousarray(image[cy0:y1 + pad, cx0:x1 + pad]))
            boxes = [(b[0] + cx0, b[1] + cy0, b[2] + cx0, b[3] + cy0) for b in (f.box for f in found)]
            assert max((iou(b, face["box"]) for b in boxes), default=0) > 0.6, face


def test_same_seed_same_media_other_seed_other_layout(tmp_path):
    kwargs = {"width": 480, "height": 270, "faces": 3, "seconds": 0.2, "fps": 10}
    a = make_crowd_video(tmp_path / "a.mp4", seed=1, **kwargs)
    b = make_crowd_video(tmp_path / "b.mp4", seed=1, **kwargs)
    c = make_crowd_video(tmp_path / "c.mp4", seed=2, **kwargs)
    assert a["frames"] == b["frames"] and a["frames"] != c["frames"]
    assert (tmp_path / "a.json").is_file()
    assert all(np.array_equal(x, y) for x, y in zip(read_video(tmp_path / "a.mp4"), read_video(tmp_path / "b.mp4")))


def test_score_counts_found_frames_and_catches_swapped_ids(crowd):
    truth = crowd.truth
    perfect = [[(f"t{fid}", face["box"]) for fid, face in frame["faces"].items() if face["visible"]] for frame in truth["frames"]]
    result = score(truth, perfect)
    assert all(face["ratio"] == 1.0 and len(face["tracks"]) == 1 for face in result["faces"].values())
    assert result["swaps"] == []
    half = len(perfect) // 2  # from halfway, faces 0 and 1 trade track ids
    swapped = [[({"t0": "t1", "t1": "t0"}.get(t, t) if k >= half else t, box) for t, box in frame] for k, frame in enumerate(perfect)]
    assert score(truth, swapped)["swaps"] == ["t0", "t1"]
    missing = [[(t, box) for t, box in frame if t != "t5"] if k % 2 else frame for k, frame in enumerate(perfect)]
    assert score(truth, missing)["faces"]["5"]["ratio"] == pytest.approx(0.5, abs=0.02)
