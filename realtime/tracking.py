"""Stable face ids across frames, and the per-face state that hangs off each id.

MediaPipe does not name faces, and the order of its results can change from frame to frame, so
faces are matched to the previous frame's boxes by overlap (IoU), best pairs first. A face that is
lost for longer than `max_missing_s` is forgotten: if it comes back it gets a new id and a fresh
window. State is bounded by the number of faces on screen, never by the length of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from emoview.realtime.faces import Face, iou  # noqa: F401 - iou: tracking's measure of overlap, also imported from here
from emoview.realtime.ring import RingBuffer
from emoview.realtime.smoothing import ProbabilitySmoother


@dataclass
class Track:
    id: int
    face: Face
    window: RingBuffer
    smoother: ProbabilitySmoother
    last_seen_ms: float
    seen: bool = True  # matched in the current frame
    embeddings: RingBuffer | None = None  # a fused model's crop embeddings, one per frame of `window`


class FaceTracker:
    def __init__(
        self,
        window: int,
        features: int,
        min_iou: float = 0.2,
        max_missing_s: float = 0.5,
        smoothing_s: float = 0.25,
        margin: float = 0.08,
        embedding: int = 0,
    ) -> None:
        self.window = window
        self.features = features
        self.embedding = embedding
        self.min_iou = min_iou
        self.max_missing_s = max_missing_s
        self.smoothing_s = smoothing_s
        self.margin = margin
        self.tracks: dict[int, Track] = {}
        self._ids = count(1)

    def update(self, faces: list[Face], timestamp_ms: float) -> list[Track]:
        """Assign each face to a track (existing or new); returns the tracks seen in this frame."""
        pairs = sorted(
            ((iou(track.face.box, face.box), track_id, i) for track_id, track in self.tracks.items() for i, face in enumerate(faces)),
            reverse=True,
        )
        matched: dict[int, int] = {}
        used_tracks: set[int] = set()
        for overlap, track_id, i in pairs:
            if overlap < self.min_iou:
                break
            if track_id in used_tracks or i in matched:
                continue
            matched[i] = track_id
            used_tracks.add(track_id)
        for track in self.tracks.values():
            track.seen = False
        seen: list[Track] = []
        for i, face in enumerate(faces):
            track = self.tracks.get(matched.get(i, -1)) or self._new_track(face, timestamp_ms)
            track.face, track.last_seen_ms, track.seen = face, timestamp_ms, True
            seen.append(track)
        self._forget(timestamp_ms)
        return seen

    def _new_track(self, face: Face, timestamp_ms: float) -> Track:
        track = Track(
            id=next(self._ids),
            face=face,
            window=RingBuffer(self.window, self.features),
            smoother=ProbabilitySmoother(self.smoothing_s, self.margin),
            last_seen_ms=timestamp_ms,
            embeddings=RingBuffer(self.window, self.embedding) if self.embedding else None,
        )
        self.tracks[track.id] = track
        return track

    def _forget(self, timestamp_ms: float) -> None:
        limit = self.max_missing_s * 1000.0
        for track_id in [t.id for t in self.tracks.values() if not t.seen and timestamp_ms - t.last_seen_ms > limit]:
            del self.tracks[track_id]

    def reset(self) -> None:
        self.tracks.clear()
