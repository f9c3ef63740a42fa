"""The landmarker reads MediaPipe's C results directly; it must give exactly what the public API gives."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emoview.realtime.faces import FaceLandmarker


def _frames(path, count):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _detect_all(face_model, frames, video, max_faces, monkeypatch, public):
    with monkeypatch.context() as patch:
        if public:
            patch.setenv("EMOVIEW_MEDIAPIPE_OBJECTS", "1")
        with FaceLandmarker(face_model, max_faces=max_faces, video=video) as landmarker:
            assert (landmarker._direct is None) == public
            return [landmarker.detect(frame, 33 * (i + 1)) for i, frame in enumerate(frames)]


@pytest.mark.parametrize("video, max_faces, media", [(True, 1, "single_face.mp4"), (True, 1, "face_noface.mov"), (False, 4, "multi_face.jpg")])
def test_direct_results_equal_mediapipe_objects(face_model, samples, monkeypatch, video, max_faces, media):
    path = samples / media
    frames = [cv2.imread(str(path))] if path.suffix == ".jpg" else _frames(path, 60)[::3] if "noface" in media else _frames(path, 20)
    direct = _detect_all(face_model, frames, video, max_faces, monkeypatch, public=False)
    public = _detect_all(face_model, frames, video, max_faces, monkeypatch, public=True)
    assert sum(len(faces) for faces in direct) >= max(1, len(frames) // 2)  # real faces were compared, not empty lists
    assert max(len(faces) for faces in direct) >= min(max_faces, 2)  # several faces per frame keep their order
    for got, want in zip(direct, public):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.points.shape == (478, 3) and a.points.dtype == np.float32
            np.testing.assert_array_equal(a.points, b.points)
            np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
            assert a.box == b.box


@pytest.mark.parametrize("public", [False, True])
def test_failed_call_raises_mediapipes_error_and_closed_landmarker_refuses(face_model, samples, monkeypatch, public):
    from emoview.realtime.faces import to_mp_image

    if public:
        monkeypatch.setenv("EMOVIEW_MEDIAPIPE_OBJECTS", "1")
    image = to_mp_image(_frames(samples / "single_face.mp4", 1)[0])
    landmarker = FaceLandmarker(face_model, video=True)
    assert landmarker.readout == ("objects" if public else "direct")
    assert len(landmarker.infer(image, 40)) == 1
    with pytest.raises((ValueError, RuntimeError), match="(?i)timestamp"):  # video timestamps must grow
        landmarker.infer(image, 40)
    assert len(landmarker.infer(image, 80)) == 1  # and the landmarker still works after the error
    landmarker.close()
    with pytest.raises(RuntimeError, match="closed"):
        landmarker.infer(image, 120)


def test_threaded_session_hands_the_main_thread_no_mediapipe_images(face_model, samples, random_model):
    """MediaPipe images are made by the reader and freed by the landmark thread: freed in the main
    thread, their __del__ could swallow a Ctrl-C (Python ignores exceptions raised there)."""
    from emoview.realtime.classifier import EmotionClassifier
    from emoview.realtime.pipeline import Analyzer
    from emoview.realtime.session import Session
    from emoview.realtime.sources import VideoSource

    seen = []
    with FaceLandmarker(face_model) as landmarker, VideoSource(samples / "single_face.mp4") as source:
        analyzer = Analyzer(EmotionClassifier(random_model), landmarker)
        stats = Session(source, analyzer, on_result=lambda result: seen.append(result.frame.prepared)).run()
    assert stats.frames == 72 and stats.frames_with_faces > 60  # the prepared images were used
    assert seen == [None] * 72
