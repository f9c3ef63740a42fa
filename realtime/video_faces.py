"""Faces of every size in video and camera frames: the fast path for large faces, crop tracks for small ones.

MediaPipe's landmarker in VIDEO mode (today's fast path) finds a face only when it fills more than
about an eighth of the frame: at 1080p, faces under about 200 px are never found. Searching every
frame with tiles would cost tens of detector calls per frame. So the work is split by rate:

- every frame, the full-frame landmarker runs as before: one large face costs exactly what it did;
- every `INTERVAL_MS` of media time, the tiled search (`Discovery`, its own thread) looks for the
  faces nobody tracks yet, only while fewer than `max_faces` are tracked;
- every frame, each face it found is landmarked on a cut-out around where it was last (moved on
  by its velocity), by a VIDEO-mode landmarker of its own that keeps following it from its own
  previous landmarks; its detector runs only when it loses the face. The cost grows with the
  number of faces, not with the frame size. A face the full-frame landmarker finds too is left
  to it; two cut-outs that landed on one face (a crossing) keep the one that expected it there.

Ids are not decided here: `tracking.FaceTracker` gives them, by position, size and velocity, and
re-identifies a face that comes back within a few seconds.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emoview.realtime.discovery import INTERVAL_MS, Discovery, Found
from emoview.realtime.face_search import MIN_FACE, FaceSearch
from emoview.realtime.faces import Face, FaceLandmarker, iou, landmarks_around

CONTEXT = 2.0  # a cut-out is this many face sides wide: room for a frame's motion, and the face fills half of it
CUT_SIZES = (128, 192, 256)  # px: the smallest that holds the face at its own resolution (no detail lost, none wasted)
MISSES = 6  # frames a crop track may find no face (a blink of occlusion, a turned head) before it is dropped
SAME_FACE = 0.4  # IoU above which two results are one face
KNOWN = 0.2  # IoU above which a discovered box is a face already tracked
CROP_THREADS = max(1, min(os.cpu_count() or 1, 4))  # crop tracks landmarked side by side, one per core


@dataclass
class CropTrack:
    """One small face followed by its own landmarker on a cut-out around it."""

    landmarker: FaceLandmarker
    box: np.ndarray  # (4,) float: the last box, frame pixels
    velocity: np.ndarray  # (2,) px per ms of its centre
    last_ms: float
    misses: int = 0

    def predicted(self, timestamp_ms: float) -> np.ndarray:
        dt = min(max(timestamp_ms - self.last_ms, 0.0), 500.0)
        return self.box + np.tile(self.velocity * dt, 2)

    def moved(self, box: tuple[int, int, int, int], timestamp_ms: float) -> None:
        new = np.array(box, dtype=np.float64)
        dt = timestamp_ms - self.last_ms
        if 0 < dt < 1000 and self.misses == 0:
            step = ((new[:2] + new[2:]) - (self.box[:2] + self.box[2:])) / 2 / dt
            self.velocity = 0.5 * self.velocity + 0.5 * step  # smoothed: landmark jitter is not motion
        self.box, self.last_ms, self.misses = new, timestamp_ms, 0


def cut_size(box) -> int:
    side = CONTEXT * max(box[2] - box[0], box[3] - box[1])
    return next((size for size in CUT_SIZES if side <= size), CUT_SIZES[-1])


class VideoFaceFinder:
    """`FaceLandmarker.detect` for video frames, small faces included; use as a context manager."""

    def __init__(self, model_path: str | os.PathLike, max_faces: int = 1, min_confidence: float = 0.5,
                 min_face: int = MIN_FACE, interval_ms: float = INTERVAL_MS, wait_for_discovery: bool = False) -> None:
        self.model_path = model_path
        # wait for each search started (and the landmarkers it readies) before returning: what is
        # found then does not depend on the machine's load (tests; offline runs that want that).
        # A live loop never waits: a new face is then found a search's time later.
        self.wait_for_discovery = wait_for_discovery
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self.full = FaceLandmarker(model_path, max_faces=max_faces, video=True, min_confidence=min_confidence)
        self.tracks: list[CropTrack] = []
        self._spare: list[FaceLandmarker] = []  # landmarkers made ahead by the discovery thread
        self._spare_lock = threading.Lock()
        self._waiting: list = []  # boxes of the newest search still to become tracks
        self._last_full: list[tuple[int, int, int, int]] = []  # the full-frame landmarker's boxes in the last frame
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        self._search = self.discovery = None
        try:
            self._search = FaceSearch(model_path, min_face=min_face, min_confidence=min_confidence)
            self.discovery = Discovery(self._search, interval_ms, after_search=self._stock)
        except BaseException:
            self.close()
            raise

    @property
    def readout(self) -> str:
        return self.full.readout

    @property
    def graph_threads(self) -> frozenset[int]:
        """The full-frame landmarker's MediaPipe threads: the ones a session gives a core of their own."""
        return self.full.graph_threads

    def infer(self, image, ts):
        """The bare full-frame landmarker (the benchmark's floor times this)."""
        return self.full.infer(image, ts)

    def detect(self, bgr: np.ndarray, timestamp_ms: int | None = None, image=None) -> list[Face]:
        ts = float(timestamp_ms or 0)
        tracks = list(self.tracks)
        expected = [track.predicted(ts) for track in tracks]
        # the crop tracks on the pool's threads while this one runs the full-frame landmarker:
        # MediaPipe lets go of the GIL, so on two cores the faces cost about half their sum
        pending = [self._crops().submit(self._landmarks, t, bgr, box, ts) for t, box in zip(tracks, expected)]
        faces = self.full.detect(bgr, timestamp_ms, image)
        found = [future.result() for future in pending]
        for track in self._take_over(faces, ts):  # rare: at once, in this thread
            tracks.append(track)
            expected.append(track.predicted(ts))
            found.append(self._landmarks(track, bgr, expected[-1], ts))
        kept: list[tuple[Face, CropTrack]] = []
        for track, box, face in zip(tracks, expected, found):
            if face is None or any(iou(face.box, other.box) >= SAME_FACE for other in faces):
                # lost, or the full-frame landmarker has it now (it grew, or came closer)
                track.misses += 1
                if face is not None or track.misses > MISSES:
                    self._drop(track)
                continue
            duplicate = next(((f, t) for f, t in kept if iou(face.box, f.box) >= SAME_FACE), None)
            if duplicate is not None:  # two cut-outs on one face: it stays with the track that expected it there
                other_face, other = duplicate
                if iou(face.box, tuple(box)) > iou(other_face.box, tuple(other.predicted(ts))):
                    kept.remove(duplicate)
                    self._drop(other)
                else:
                    self._drop(track)
                    continue
            track.moved(face.box, ts)
            kept.append((face, track))
        faces = faces + [face for face, _ in kept]
        self._discover(bgr, ts, list(faces))
        return faces[: self.max_faces]

    @staticmethod
    def _landmarks(track: CropTrack, bgr: np.ndarray, box: np.ndarray, ts: float) -> Face | None:
        return landmarks_around(track.landmarker, bgr, box, int(ts), CONTEXT, cut_size(box))

    def _crops(self) -> ThreadPoolExecutor:
        """The crop tracks' threads, made on first use (a run with one large face never needs them)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=CROP_THREADS, thread_name_prefix="crops")
        return self._pool

    def _take_over(self, faces: list[Face], ts: float) -> list[CropTrack]:
        """A face the full-frame landmarker lost (a turned head, a blur) is followed on from its
        last box by a new crop track at once, instead of waiting for the next search to find it."""
        started = []
        for box in self._last_full:
            if any(iou(box, face.box) >= KNOWN for face in faces):
                continue
            if any(iou(box, tuple(track.predicted(ts))) >= KNOWN for track in self.tracks):
                continue
            landmarker = self._spare_landmarker()
            if landmarker is not None:
                started.append(CropTrack(landmarker, np.array(box, np.float64), np.zeros(2), ts))
                self.tracks.append(started[-1])
        self._last_full = [face.box for face in faces]
        return started

    def _discover(self, bgr: np.ndarray, ts: float, faces: list[Face]) -> None:
        """New crop tracks for the newest search's faces that nobody tracks yet (as landmarkers
        become ready: they are made in the discovery thread); the next frame offered when due."""
        found = self.discovery.take()
        if found is not None:
            self._waiting = sorted(found.boxes, key=lambda b: -b.score)
        still = []
        for box in self._waiting:
            if len(faces) >= self.max_faces:
                break
            if any(iou(box.ints, face.box) >= KNOWN or _centre_inside(box.ints, face.box) for face in faces):
                continue
            landmarker = self._spare_landmarker()
            if landmarker is None:
                still.append(box)
                continue
            self.tracks.append(CropTrack(landmarker, np.array(box.ints, np.float64), np.zeros(2), ts))
            faces.append(Face(np.zeros((0, 3), np.float32), np.zeros(0, np.float32), box.ints))  # a placeholder: no second track on it
        self._waiting = still
        if len(faces) < self.max_faces and self.discovery.due(ts):
            self.discovery.offer(bgr, ts)
            if self.wait_for_discovery:
                self.discovery.wait_idle()

    def _spare_landmarker(self) -> FaceLandmarker | None:
        with self._spare_lock:
            return self._spare.pop() if self._spare else None

    def _stock(self, found: Found) -> None:
        """In the discovery thread: a landmarker ready for each face found that has no track, so
        starting a track costs the frame loop nothing (making one takes 50-100 ms)."""
        while True:
            with self._spare_lock:
                # one for each face found that has no track yet, and one spare for a face the full-frame landmarker loses
                wanted = min(self.max_faces - len(self.tracks), max(1, len(found.boxes) - len(self.tracks)))
                if self._closed or len(self._spare) >= wanted:
                    return
            landmarker = FaceLandmarker(self.model_path, max_faces=1, video=True, min_confidence=self.min_confidence)
            with self._spare_lock:
                if self._closed:
                    landmarker.close()
                    return
                self._spare.append(landmarker)

    def _drop(self, track: CropTrack) -> None:
        """A lost track's landmarker goes back to the spares (its old face state ends at the next detection)."""
        self.tracks.remove(track)
        with self._spare_lock:
            if self._closed or len(self._spare) >= self.max_faces:
                track.landmarker.close()
            else:
                self._spare.append(track.landmarker)

    def close(self) -> None:
        if self.discovery is not None:
            self.discovery.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._spare_lock:
            self._closed = True
            spares, self._spare = self._spare, []
        for landmarker in spares + [t.landmarker for t in self.tracks]:
            landmarker.close()
        self.tracks = []
        if self._search is not None:
            self._search.close()
        self.full.close()

    def __enter__(self) -> "VideoFaceFinder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _centre_inside(box, other) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return other[0] <= cx <= other[2] and other[1] <= cy <= other[3]
