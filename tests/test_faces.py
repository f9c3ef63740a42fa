"""The landmarker reads MediaPipe's C results directly; it must give exactly what the public API gives.
And MediaPipe's start-up (import, create, warm-up) is quiet on fd 2 and never cut in two by a Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from emoview.realtime.face_search import FaceSearch
from emoview.realtime.faces import FaceLandmarker, quiet_native_stderr
from emoview.realtime.signals import handling_stop_signals


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


@pytest.mark.parametrize("task", ["FaceLandmarker", "FaceDetector"])
def test_a_stop_signal_while_mediapipe_makes_its_graph_acts_once_the_graph_is_ours_to_close(face_model, monkeypatch, task):
    """Ctrl-C or SIGTERM during MediaPipe's create call: Python runs the handler as the C call returns,
    before MediaPipe's wrapper holds the graph. Raised there, the graph would run on unclosed (in
    CI its threads then logged over the CLI's last line, "emoview: interrupted")."""
    from mediapipe.tasks.python import vision

    made, closed = [], []
    mediapipe_task = getattr(vision, task)
    wrap, close = mediapipe_task.__init__, mediapipe_task.close

    def init(self, *args, **kwargs):
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # handled here, in the main thread
        wrap(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(mediapipe_task, "__init__", init)
    monkeypatch.setattr(mediapipe_task, "close", lambda self: (closed.append(self), close(self))[1])
    with handling_stop_signals() as signals, pytest.raises(KeyboardInterrupt):
        FaceLandmarker(face_model, video=True) if task == "FaceLandmarker" else FaceSearch(face_model)
    assert signals.received == 1
    assert len(made) == 1 and closed[:1] == made  # the interrupt came after the wrapper, and it closed the graph


def test_quiet_blocks_that_overlap_in_two_threads_give_fd_2_back(monkeypatch):
    """The discovery thread readies a landmarker while another starts: fd 2 is the process's, and
    each block restoring what it found would leave it on /dev/null for good."""
    monkeypatch.delenv("EMOVIEW_DEBUG", raising=False)
    where = lambda: (os.fstat(2).st_dev, os.fstat(2).st_ino)  # noqa: E731
    before, null = where(), (os.stat(os.devnull).st_dev, os.stat(os.devnull).st_ino)
    first, second = quiet_native_stderr(), quiet_native_stderr()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start ends first
    assert where() == null  # the second block is still quiet
    second.__exit__(None, None, None)
    assert where() == before


def test_a_stop_signal_during_mediapipes_import_acts_once_the_import_is_done():
    """MediaPipe's import pulls in matplotlib; a Ctrl-C inside its compiled font module's start made
    the process abort at exit. The signal waits for the import, then stops as usual."""
    code = (
        "import signal, sys, threading\n"
        "from emoview.realtime.signals import handling_stop_signals\n"
        "from emoview.realtime.faces import mediapipe_tasks\n"
        "class SignalInsideMatplotlib:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'matplotlib.ft2font':\n"
        "            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)\n"
        "sys.meta_path.insert(0, SignalInsideMatplotlib())\n"
        "with handling_stop_signals():\n"
        "    try:\n"
        "        mediapipe_tasks()\n"
        "    except KeyboardInterrupt:\n"
        "        print('stopped after', sorted(m for m in ('matplotlib.ft2font', 'mediapipe.tasks.python.vision') if m in sys.modules))\n"
        "        sys.exit(130)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stdout.strip() == "stopped after ['matplotlib.ft2font', 'mediapipe.tasks.python.vision']", done.stdout
