"""One frame in, every face's smoothed emotion out: landmarks -> features -> window -> model.

The `Analyzer` is the same for the live window, recordings, timelines and the benchmark, so what
the benchmark measures is what the user runs. It times each stage of every frame. With a fused
model, each face's aligned crop of the frame goes to the model too, and the embedding the model
returns for it is kept in the face's window: no frame's crop is ever encoded twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.faces import Face, FaceLandmarker, to_mp_image
from emoview.realtime.sources import Frame
from emoview.realtime.tracking import FaceTracker, Track

STAGES = ("landmarks", "features", "model", "smoothing")


@dataclass
class FaceResult:
    id: int
    box: tuple[int, int, int, int]
    points: np.ndarray  # (478, 3) isotropic pixels: x, y are image pixels
    probabilities: np.ndarray  # smoothed over time
    label: str  # the shown label: changes only with a margin
    frames_in_window: int
    raw: np.ndarray | None = None  # this frame's model output, unsmoothed: what timelines average

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


@dataclass
class FrameResult:
    frame: Frame
    faces: list[FaceResult]
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage


class Analyzer:
    """Turns frames into `FrameResult`s. Not thread-safe: one analyzer per pipeline."""

    def __init__(
        self,
        classifier: EmotionClassifier,
        landmarker: FaceLandmarker,
        window: int | None = None,
        stills: bool = False,
        smoothing_s: float = 0.25,
        margin: float = 0.08,
    ) -> None:
        self.classifier = classifier
        self.spec = classifier.spec
        self.landmarker = landmarker
        self.labels = classifier.labels
        self.stills = stills  # unrelated images: no memory from one frame to the next
        self._new_tracker = lambda: FaceTracker(
            window=1 if stills else (window or self.spec.window),
            features=self.spec.feature_size,
            smoothing_s=0.0 if stills else smoothing_s,
            margin=margin,
            embedding=self.spec.embedding,
        )
        self._no_embedding = np.zeros(self.spec.embedding, np.float32)  # a placeholder until the model answers
        self.tracker = self._new_tracker()

    def analyze(self, frame: Frame) -> FrameResult:
        """Both stages, one after the other, in the calling thread."""
        faces, timings = self.find_faces(frame)
        return self.finish(frame, faces, timings)

    @staticmethod
    def prepare(image: np.ndarray):
        """What a source's reader thread can do for `find_faces` ahead of time (`Source.prepare`)."""
        return to_mp_image(image)

    def find_faces(self, frame: Frame) -> tuple[list[Face], dict[str, float]]:
        """Stage 1, the landmarker: the Session runs it in its own thread, one frame ahead of `finish`,
        so the rest of the pipeline overlaps with it (it releases the GIL while it works)."""
        start = time.perf_counter()
        # the prepared image is let go here, in the landmark thread: freeing a MediaPipe image in the
        # main thread could run its __del__ just as Ctrl-C arrives, and Python drops exceptions there
        prepared, frame.prepared = frame.prepared, None
        faces = self.landmarker.detect(frame.image, int(frame.timestamp_ms), prepared)
        return faces, {"landmarks": (time.perf_counter() - start) * 1000.0}

    def finish(self, frame: Frame, faces: list[Face], timings: dict[str, float]) -> FrameResult:
        """Stage 2: ids, features, model and smoothing; frames must arrive in order."""
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = (now - clock) * 1000.0
            clock = now

        if self.stills:
            self.tracker = self._new_tracker()  # nothing carries over, and face ids restart at 1
        tracks = self.tracker.update(faces, frame.timestamp_ms)
        spec = self.spec
        crops = {}
        for track in tracks:
            track.window.push(spec.frame_features(spec.select_points(track.face.points), track.face.blendshapes))
            if spec.appearance:
                crops[track.id] = spec.face_crop(frame.image, track.face.points)
                track.embeddings.push(self._no_embedding)  # the newest frame's comes back from the model
        lap("features")
        raw = self._classify(tracks, crops)
        lap("model")
        results = [self._smooth(track, raw[track.id], frame.timestamp_ms) for track in tracks]
        lap("smoothing")
        return FrameResult(frame, results, timings)

    def _classify(self, tracks: list[Track], crops: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """One model call per distinct window length (usually one call for all faces)."""
        by_length: dict[int, list[Track]] = {}
        for track in tracks:
            by_length.setdefault(track.window.count, []).append(track)
        raw: dict[int, np.ndarray] = {}
        for group in by_length.values():
            batch = np.stack([track.window.window() for track in group])
            if self.spec.appearance:
                probabilities, embeddings = self.classifier.step(
                    batch, np.stack([crops[t.id] for t in group]), np.stack([t.embeddings.window() for t in group])
                )
                for track, embedding in zip(group, embeddings):
                    track.embeddings.replace_last(embedding)
            else:
                probabilities = self.classifier.predict(batch)
            for track, row in zip(group, probabilities):
                raw[track.id] = row
        return raw

    def _smooth(self, track: Track, probabilities: np.ndarray, timestamp_ms: float) -> FaceResult:
        smoothed = track.smoother.update(probabilities, timestamp_ms).copy()
        return FaceResult(
            id=track.id,
            box=track.face.box,
            points=track.face.points,
            probabilities=smoothed,
            label=self.labels[track.smoother.label_index],
            frames_in_window=track.window.count,
            raw=probabilities,
        )
