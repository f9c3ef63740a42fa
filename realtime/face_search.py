"""Faces of any size in a picture: MediaPipe's face detector on overlapping tiles at a few scales.

Why tiles: the detector (BlazeFace short-range, the one inside face_landmarker.task) sees its whole
input shrunk to 128x128, and finds a face only when it spans between about 1/8 and 3/4 of that
input (measured on the five faces of multi_face.jpg: scores 0.9 from 1/1.3 down to 1/7 of the
input's side, fading at 1/8, gone at 1/10). Shown a whole group photo it misses every face smaller
than an eighth of the frame. Tiles `TILE_FACES` times the smallest face wanted, doubling per level
up to the whole picture, each overlapping its neighbours by `OVERLAP`, put every face from
`min_face` up wholly inside some tile at a size the detector sees; the boxes one face gets from
several tiles and levels are merged by overlap (`merge_boxes`).

The detector model is read out of the landmarker's own .task file (a zip holding
face_detector.tflite): MediaPipe's FaceDetector task takes it as a buffer, so nothing else needs
downloading. A detector call costs about 2-3 ms whatever the tile's size (it is mostly the call).
"""

from __future__ import annotations

import os
import threading
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np

from emoview.realtime.errors import ModelError

SMALLEST_FACE = 12  # px: the least --min-face / min_face accepts: below it there is no face to read
MIN_FACE = 32  # px: the smallest face searched for by default (the height of a face 2 m away in 720p)
TILE_FACES = 6  # a first-level tile is this many smallest faces wide: the face is then 1/6 of the detector's view
OVERLAP = 0.3  # neighbouring tiles share this share of their side, so faces up to the next level's lower bound fit one tile
DETECTOR_ENTRY = "face_detector.tflite"
DETECTOR_INPUT = 128  # the short-range detector's input side: larger tiles are shrunk to twice this first


@dataclass(frozen=True)
class Box:
    """A face box in the searched picture's pixels, with the detector's score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def side(self) -> float:
        return max(self.x1 - self.x0, self.y1 - self.y0)

    @property
    def ints(self) -> tuple[int, int, int, int]:
        return int(round(self.x0)), int(round(self.y0)), int(round(self.x1)), int(round(self.y1))


def tiles(width: int, height: int, min_face: int = MIN_FACE) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side) covering a width x height picture, finest level first.

    Level k's side is TILE_FACES * min_face * 2**k; the last level is one tile of the whole picture
    (its longer side), which finds faces larger than the detector's view of any smaller tile.
    """
    longest = max(width, height)
    out: list[tuple[int, int, int]] = []
    side = TILE_FACES * max(int(min_face), 8)
    while side * 1.25 < longest:  # a tile nearly the picture's size adds nothing to the whole picture's
        stride = max(1, int(side * (1.0 - OVERLAP)))
        for y in _starts(height, side, stride):
            for x in _starts(width, side, stride):
                out.append((x, y, side))
        side *= 2
    out.append((0, 0, longest))
    return out


def _starts(length: int, side: int, stride: int) -> list[int]:
    """Tile starts along one axis: evenly spaced, the last tile flush with the far edge."""
    if side >= length:
        return [0]
    count = int(np.ceil((length - side) / stride)) + 1
    return [int(round(i * (length - side) / (count - 1))) for i in range(count)]


def overlap(a: Box, b: Box) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box)."""
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    area_a = (a.x1 - a.x0) * (a.y1 - a.y0)
    area_b = (b.x1 - b.x0) * (b.y1 - b.y0)
    union = area_a + area_b - inter
    smaller = min(area_a, area_b)
    return (inter / union if union > 0 else 0.0), (inter / smaller if smaller > 0 else 0.0)


def merge_boxes(boxes: list[Box], same_iou: float = 0.3, inside: float = 0.6) -> list[Box]:
    """One box per face, best score first.

    The best-scoring box leads a group of every box that overlaps it by `same_iou` (the same face
    seen from another tile or level) or lies mostly `inside` it (a face cut by a tile edge, or a
    face within a face); the group's box is the score-weighted mean of the leader and its close
    duplicates (IoU >= 0.5), so tiles' small disagreements average out and cut faces do not pull.
    """
    left = sorted(boxes, key=lambda b: b.score, reverse=True)
    merged: list[Box] = []
    while left:
        leader = left.pop(0)
        close, rest = [leader], []
        for box in left:
            iou, share = overlap(leader, box)
            if iou >= same_iou or share >= inside:
                if iou >= 0.5:
                    close.append(box)
            else:
                rest.append(box)
        weights = np.array([b.score for b in close])
        coords = np.array([(b.x0, b.y0, b.x1, b.y1) for b in close])
        x0, y0, x1, y1 = (weights[:, None] * coords).sum(axis=0) / weights.sum()
        merged.append(Box(float(x0), float(y0), float(x1), float(y1), leader.score))
        left = rest
    return merged


def detector_model(task_path: str | os.PathLike) -> bytes:
    """The face detector inside a face_landmarker.task bundle."""
    try:
        with zipfile.ZipFile(task_path) as bundle:
            return bundle.read(DETECTOR_ENTRY)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"cannot read the face detector from {task_path} ({exc}); pass MediaPipe's face_landmarker.task") from None


class FaceSearch:
    """Face boxes of every size down to `min_face` px in BGR pictures; use as a context manager.

    Thread-safe (one search at a time): the video discovery thread and a still finder may share one.
    """

    def __init__(self, task_path: str | os.PathLike, min_face: int = MIN_FACE, min_confidence: float = 0.5) -> None:
        from emoview.realtime.faces import mediapipe_tasks, native_start

        BaseOptions, vision = mediapipe_tasks()
        self.min_face = int(min_face)
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=detector_model(task_path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_confidence,
        )
        self._lock = threading.Lock()
        self._detector = None
        try:
            with native_start(self.close):
                self._detector = vision.FaceDetector.create_from_options(options)
                self._detector.detect(_mp_rgb(np.zeros((64, 64, 3), np.uint8)))  # start-up chatter and allocations, quietly
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"MediaPipe cannot load the face detector of {task_path}: {exc}") from None

    def find(self, bgr: np.ndarray) -> list[Box]:
        """Merged face boxes at least `min_face` px on their longer side, best score first."""
        height, width = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        found: list[Box] = []
        with self._lock:
            if self._detector is None:
                raise RuntimeError("this face search is closed")
            for x, y, side in tiles(width, height, self.min_face):
                tile = rgb[y : y + side, x : x + side]
                scale = 1.0
                if max(tile.shape[:2]) > 2 * DETECTOR_INPUT:  # the detector shrinks it to 128 anyway: shrink once, cheaply
                    scale = DETECTOR_INPUT * 2 / max(tile.shape[:2])
                    tile = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                for detection in self._detector.detect(_mp_rgb(tile)).detections:
                    b = detection.bounding_box
                    found.append(Box(
                        x + b.origin_x / scale, y + b.origin_y / scale,
                        x + (b.origin_x + b.width) / scale, y + (b.origin_y + b.height) / scale,
                        float(detection.categories[0].score),
                    ))
        return [box for box in merge_boxes(found) if box.side >= self.min_face]

    def close(self) -> None:
        from emoview.realtime.faces import quiet_native_stderr

        with self._lock:
            if self._detector is not None:
                with quiet_native_stderr():  # its graph says goodbye on fd 2
                    self._detector.close()
                self._detector = None

    def __enter__(self) -> "FaceSearch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()



def _mp_rgb(rgb: np.ndarray):
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
