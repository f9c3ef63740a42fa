"""emoview from Python: `import emoview`, then frames, videos or stills in, faces with emotions out.

The same library classes as the `emoview` commands (the `Analyzer` pipeline, the MediaPipe face
finders, the ONNX emotion classifier), so a script gets exactly what the CLI shows. Models load on
first use, not on `import emoview`. Whatever holds a model is closed by `close()`, by `with`, or,
if a script forgets both, when it is garbage collected or the interpreter exits: a weakref
finalizer runs while the interpreter is still whole, so an exit never prints "Exception ignored".
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.errors import InputError
from emoview.realtime.face_model import resolve_face_model
from emoview.realtime.face_search import MIN_FACE, SMALLEST_FACE
from emoview.realtime.faces import StillFaceFinder, read_image
from emoview.realtime.pipeline import Analyzer
from emoview.realtime.sources import Frame, VideoSource
from emoview.realtime.stills import MAX_FACES, classify_images
from emoview.realtime.timeline import Timeline
from emoview.realtime.video_faces import VideoFaceFinder
from emoview.realtime.video_timeline import video_timeline

__all__ = ["EmotionAnalyzer", "FaceEmotion", "Timeline", "analyze_video", "predict"]


_LIVE: set[weakref.finalize] = set()  # finalizers of API objects not yet closed
_hooked = False


def _close_all() -> None:
    for finalizer in list(_LIVE):
        finalizer()


def closed_at_exit(owner: object, close) -> weakref.finalize:
    """`close()` once: when called, when `owner` is collected, or when the interpreter exits.

    At exit it runs among threading's exit hooks, before concurrent.futures shuts its executors
    down: MediaPipe hands each call, closing included, to such an executor, so a plain atexit or
    weakref finalizer would find it shut and print "Exception ignored". Registered after the first
    model loaded (and MediaPipe's executors with it), so ours runs first.
    """
    global _hooked, _LIVE
    finalizer = weakref.finalize(owner, close)
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # not CPython: weakref's own exit hook
        return finalizer
    if not _hooked:
        register(_close_all)
        _hooked = True
    finalizer.atexit = False
    _LIVE = {f for f in _LIVE if f.alive}
    _LIVE.add(finalizer)
    return finalizer


@dataclass(frozen=True)
class FaceEmotion:
    """One face in one frame or image."""

    id: int  # stable across the frames of an `EmotionAnalyzer`; 1, 2, ... within a still
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels
    label: str  # the most likely emotion (for video: smoothed, changes only by a margin)
    probabilities: dict[str, float]  # by emotion name, summing to 1
    landmarks: np.ndarray  # (478, 3) MediaPipe face mesh; x, y in pixels, z on the x scale

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values())


def _checked_image(image) -> np.ndarray:
    """A BGR (or grey) uint8 frame as OpenCV gives it; anything else is the caller's mistake."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a BGR image as a numpy array (e.g. from cv2.imread), not {type(image).__name__}")
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or 0 in image.shape:
        raise ValueError(f"expected a uint8 image of shape (height, width, 3) in BGR order, not {image.dtype} {image.shape}")
    return image


class EmotionAnalyzer:
    """Frames of one video or camera in, every face's emotion out; faces keep their ids over time.

    Use as a context manager: `with emoview.EmotionAnalyzer() as analyzer: faces = analyzer(frame)`.
    Frames must come in order; without a `timestamp_ms`, the wall clock is used (like a camera).
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        face_model: str | os.PathLike | None = None,
        max_faces: int = 1,
        min_confidence: float = 0.5,
        window: int | None = None,
        threads: int = 1,
        min_face: int = MIN_FACE,
    ) -> None:
        _check_min_face(min_face)
        classifier = EmotionClassifier(model, threads=threads)
        landmarker = VideoFaceFinder(resolve_face_model(face_model), max_faces=max_faces, min_confidence=min_confidence, min_face=min_face)
        self._close = closed_at_exit(self, landmarker.close)
        self._analyzer = Analyzer(classifier, landmarker, window=window)
        self._started: float | None = None
        self._last_ms = float("-inf")
        self._frames = 0

    @property
    def labels(self) -> tuple[str, ...]:
        return self._analyzer.labels

    def analyze(self, image: np.ndarray, timestamp_ms: float | None = None) -> list[FaceEmotion]:
        """Every face in a BGR frame, with its emotion over the last window of frames."""
        if not self._close.alive:
            raise RuntimeError("this EmotionAnalyzer is closed; create a new one")
        image = _checked_image(image)
        now = time.perf_counter()
        if timestamp_ms is None:
            self._started = now if self._started is None else self._started
            timestamp_ms = (now - self._started) * 1000.0
        if timestamp_ms < self._last_ms:
            raise ValueError(f"timestamp {timestamp_ms} ms is before the previous frame's ({self._last_ms} ms); frames must come in order")
        self._last_ms = timestamp_ms
        result = self._analyzer.analyze(Frame(image, self._frames, float(timestamp_ms), now))
        self._frames += 1
        return [
            FaceEmotion(face.id, face.box, face.label, _by_name(self.labels, face.probabilities), face.points)
            for face in result.faces
        ]

    __call__ = analyze

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "EmotionAnalyzer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_min_face(min_face) -> None:
    if not isinstance(min_face, int) or min_face < SMALLEST_FACE:
        raise ValueError(f"min_face is the smallest face searched for, in pixels: at least {SMALLEST_FACE}, not {min_face!r}")


def _by_name(labels: tuple[str, ...], probabilities: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probabilities)}


def analyze_video(
    path: str | os.PathLike,
    max_faces: int = 1,
    min_confidence: float = 0.5,
    model: str | os.PathLike | None = None,
    face_model: str | os.PathLike | None = None,
    window: int | None = None,
    threads: int = 1,
    min_face: int = MIN_FACE,
) -> Timeline:
    """Every frame of a video file, into the per-second timeline `emoview analyze` writes."""
    _check_min_face(min_face)
    VideoSource(path).close()  # a bad file fails before the models load
    classifier = EmotionClassifier(model, threads=threads)
    run = video_timeline(path, classifier, resolve_face_model(face_model), max_faces, min_confidence, window, min_face)
    return run.timeline


def predict(
    image_or_path,
    max_faces: int = MAX_FACES,
    min_confidence: float = 0.5,
    model: str | os.PathLike | None = None,
    face_model: str | os.PathLike | None = None,
    min_face: int = MIN_FACE,
) -> list[FaceEmotion]:
    """Every face in one still (a BGR numpy image or an image file), as `emoview predict` finds it:
    faces down to `min_face` px tall, found by a tiled search."""
    if isinstance(image_or_path, (str, os.PathLike)):
        path = Path(image_or_path)
        if not path.is_file():
            raise InputError(f"{path} does not exist or is not a file; pass an image file or a BGR numpy image")
        image = read_image(path)
        if image is None:
            raise InputError(f"{path} is not a readable image; pass a .jpg, .png or another image OpenCV reads")
        name = str(path)
    else:
        image, name = _checked_image(image_or_path), "image"
    classifier = EmotionClassifier(model)
    _check_min_face(min_face)
    with StillFaceFinder(resolve_face_model(face_model), max_faces=max_faces, min_confidence=min_confidence, min_face=min_face) as finder:
        (result,), _ = classify_images([(name, image)], finder, classifier)
    labels = classifier.labels
    return [
        FaceEmotion(i, face.box, labels[int(np.argmax(face.probabilities))], _by_name(labels, face.probabilities), face.points)
        for i, face in enumerate(result.faces, 1)
    ]
