"""Overlays on real faces: panels never cover another face or another panel; HUDs say the right thing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoview.realtime.annotate import Overlay, tag_rect
from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.faces import StillFaceFinder
from emoview.realtime.pipeline import Analyzer, FrameResult
from emoview.realtime.placement import overlap, place_panels
from emoview.realtime.sources import Frame


def sample_frames(samples) -> list[np.ndarray]:
    """Real faces: the sample photo and frames across both sample videos."""
    frames = [cv2.imread(str(samples / "single_face.jpg"))]
    for name, picks in (("WolfgangLanger_Pexels.mp4", (0, 150, 300, 450)), ("single_face.mp4", (10, 40, 70))):
        video = cv2.VideoCapture(str(samples / name))
        for index in picks:
            video.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = video.read()
            assert ok
            frames.append(frame)
        video.release()
    return frames


def tiled(frames: list[np.ndarray], rows: int, cols: int, analyzer, size=(1280, 720)) -> FrameResult:
    """The frames side by side in a grid, each scaled into its cell, with each cell's real face
    (found and classified in the cell, then moved to its place): several real faces in one frame.
    MediaPipe's detector itself finds only some of many small faces in one picture."""
    width, height = size
    cell_w, cell_h = width // cols, height // rows
    canvas = np.zeros((height, width, 3), np.uint8)
    faces = []
    for k in range(rows * cols):
        frame = frames[k % len(frames)]
        scale = min(cell_w / frame.shape[1], cell_h / frame.shape[0])
        small = cv2.resize(frame, (int(frame.shape[1] * scale), int(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        y, x = (k // cols) * cell_h, (k % cols) * cell_w
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        (face,) = analyzer.analyze(Frame(small, k, 0.0, 0.0)).faces
        x0, y0, x1, y1 = face.box
        face.id, face.box, face.points = k + 1, (x0 + x, y0 + y, x1 + x, y1 + y), face.points + np.float32([x, y, 0])
        faces.append(face)
    return FrameResult(Frame(canvas, 0, 0.0, 0.0), faces)


@pytest.fixture(scope="module")
def still_analyzer(face_model, random_model):
    with StillFaceFinder(face_model, max_faces=10) as finder:
        yield Analyzer(EmotionClassifier(random_model), finder, stills=True)


@pytest.mark.parametrize("rows,cols", [(2, 2), (2, 4)])
def test_panels_cover_no_other_face_and_no_other_panel(samples, still_analyzer, rows, cols):
    result = tiled(sample_frames(samples), rows, cols, still_analyzer)
    image = result.frame.image
    overlay = Overlay(still_analyzer.labels)
    drawn = overlay.draw(result)
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    style = overlay.style_for(image.shape[0])
    placements = overlay.bars.layout(result, style, image.shape)
    boxes = [face.box for face in result.faces]
    tags = [tag_rect(face, style, image.shape) for face in result.faces]
    height, width = image.shape[:2]
    for i, placement in enumerate(placements):
        x0, y0, x1, y1 = placement.rect
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        for j in range(len(boxes)):
            assert overlap(placement.rect, (*boxes[j][:2], boxes[j][2] + 1, boxes[j][3] + 1)) == 0, (i, j)
            assert overlap(placement.rect, tags[j]) == 0, (i, j)
            if j != i:
                assert overlap(placement.rect, placements[j].rect) == 0, (i, j)
    compact = sum(p.compact for p in placements)
    if rows * cols == 4:
        assert compact == 0  # room for every full panel
    else:
        assert 0 < compact < len(placements)  # full panels where they fit, compact ones elsewhere


def test_the_old_spot_to_the_right_would_cover_the_next_face(samples, still_analyzer):
    """Why placement matters: the old rule (always right of the box) lands on a neighbour here."""
    result = tiled(sample_frames(samples), 2, 4, still_analyzer)
    image = result.frame.image
    overlay = Overlay(still_analyzer.labels)
    full, _ = overlay.bars.sizes(overlay.style_for(image.shape[0]))
    boxes = sorted(face.box for face in result.faces)
    naive = [(b[2] + 6, b[1], b[2] + 6 + full[0], b[1] + full[1]) for b in boxes]
    assert any(overlap(n, other) for n in naive for other in boxes)


def test_placement_falls_back_to_the_least_covered_spot():
    faces = [(0, 0, 100, 100), (100, 0, 200, 100)]
    placements = place_panels((200, 120), faces, full=(150, 100), compact=(80, 40), gap=2)
    assert all(p.compact for p in placements)  # nothing fits whole: compact, covering as little as possible
    assert all(p.rect[3] <= 120 for p in placements)
    assert place_panels((200, 120), [], (10, 10), (5, 5), 1) == []


def test_huds_window_shows_processing_rate_recording_the_videos_time(samples, random_model, face_model):
    from emoview.realtime.faces import FaceLandmarker

    frame = cv2.imread(str(samples / "single_face.jpg"))
    with FaceLandmarker(face_model) as landmarker:
        analyzer = Analyzer(EmotionClassifier(random_model), landmarker)
        result = analyzer.analyze(Frame(frame, 80, 3250.0, 0.0))
    overlay = Overlay(analyzer.labels)
    texts = []
    from emoview.realtime import annotate

    original = annotate.text_box
    annotate.text_box = lambda image, text, *a, **k: texts.append(text) or original(image, text, *a, **k)
    try:
        image = overlay.draw_faces(result)
        overlay.media_hud(image, result, 25.0)
        overlay.live_hud(image, result, 41.3, 18.0)
        Overlay(analyzer.labels, stills=True).media_hud(image, result, 25.0)
    finally:
        annotate.text_box = original
    assert texts[-3:] == ["0:03.2  25 fps  1 face", "41.3 fps   18 ms  1 face", "image 81  1 face"]


def test_text_is_measured_once_per_frame_size_not_for_every_bar(samples, still_analyzer, monkeypatch):
    """Measuring every label for every bar row was half of the drawing time of a frame."""
    from emoview.realtime import annotate

    result = tiled(sample_frames(samples), 2, 2, still_analyzer)
    overlay = Overlay(still_analyzer.labels)
    first = overlay.draw_faces(result)
    calls = []
    measure = annotate.cv2.getTextSize
    monkeypatch.setattr(annotate.cv2, "getTextSize", lambda *a: calls.append(a[0]) or measure(*a))
    again = overlay.draw_faces(result)
    assert np.array_equal(first, again)
    assert set(calls) == {annotate.tag_text(face) for face in result.faces}  # the name tags; no bar label again
    smaller = FrameResult(Frame(cv2.resize(result.frame.image, (640, 360)), 0, 0.0, 0.0), [])
    overlay.draw_faces(smaller)  # no faces: nothing to measure
    assert overlay.bars._metrics(overlay.style_for(360)) != overlay.bars._metrics(overlay.style_for(720))
