"""Stable face ids across frames, and the per-face state that hangs off each id.

MediaPipe does not name faces, and the order of its results can change from frame to frame, so
faces are matched to where each track is expected now: its last box moved on by its velocity.
Overlap (IoU) with that expected box decides first, best pairs first, so two faces that cross
keep their ids (each is where its own motion says, not where the other one was). A face that
overlaps no expected box is matched by distance and size instead, within about its own size of
where a track is expected: a fast face, or one that comes back after being hidden (behind
another face, out of frame) within `max_missing_s`, gets its old id back. A track lost for longer
is forgotten, and its face, if it comes back, gets a new id and a fresh window. State is bounded by
the number of faces on screen, never by the length of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from emoview.realtime.faces import Face, iou
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
    velocity: tuple[float, float] = (0.0, 0.0)  # of the box centre, px per ms, smoothed

    def expected_box(self, timestamp_ms: float) -> tuple[float, float, float, float]:
        """Where the face should be now: its last box moved on by its velocity (for at most a second)."""
        dt = min(max(timestamp_ms - self.last_seen_ms, 0.0), PREDICT_MS)
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x0, y0, x1, y1 = self.face.box
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)


PREDICT_MS = 1000.0  # motion is extrapolated this far at most
REID_DISTANCE = 1.0  # a face within this many face sides of where a track is expected may be that track
REID_SIZE = 1.5  # ... if neither is more than this many times the other's size


def _centre(box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _side(box) -> float:
    return max(box[2] - box[0], box[3] - box[1], 1)


def match_score(expected, face_box, min_iou: float) -> float:
    """How well a face fits where a track is expected: its IoU if at least `min_iou`; else, for a
    face of about the same size within REID_DISTANCE sides of it, a score below every IoU match
    that falls with the distance; else 0 (no match)."""
    overlap = iou(expected, face_box)
    if overlap >= min_iou:
        return overlap
    side_a, side_b = _side(expected), _side(face_box)
    if max(side_a, side_b) > REID_SIZE * min(side_a, side_b):
        return 0.0
    (ax, ay), (bx, by) = _centre(expected), _centre(face_box)
    distance = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / side_a
    return min_iou * (1.0 - distance / REID_DISTANCE) if distance < REID_DISTANCE else 0.0


class FaceTracker:
    def __init__(
        self,
        window: int,
        features: int,
        min_iou: float = 0.2,
        max_missing_s: float = 3.0,
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
        expected = {track_id: track.expected_box(timestamp_ms) for track_id, track in self.tracks.items()}
        pairs = sorted(
            ((match_score(expected[track_id], face.box, self.min_iou), track_id, i) for track_id in self.tracks for i, face in enumerate(faces)),
            reverse=True,
        )
        matched: dict[int, int] = {}
        used_tracks: set[int] = set()
        for score, track_id, i in pairs:
            if score <= 0:
                break
            if track_id in used_tracks or i in matched:
                continue
            matched[i] = track_id
            used_tracks.add(track_id)
        for track in self.tracks.values():
            track.seen = False
        seen: list[Track] = []
        for i, face in enumerate(faces):
            track = self.tracks.get(matched.get(i, -1))
            if track is None:
                track = self._new_track(face, timestamp_ms)
            else:
                track.velocity = _velocity(track, face, timestamp_ms)
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


def _velocity(track: Track, face: Face, timestamp_ms: float) -> tuple[float, float]:
    """The track's velocity after seeing `face` now: half the old, half this step (landmark
    jitter is not motion); after a gap, the old velocity stays (the step spans the hidden time)."""
    dt = timestamp_ms - track.last_seen_ms
    if dt <= 0 or dt > 250:
        return track.velocity
    (ax, ay), (bx, by) = _centre(track.face.box), _centre(face.box)
    vx, vy = track.velocity
    return (0.5 * vx + 0.5 * (bx - ax) / dt, 0.5 * vy + 0.5 * (by - ay) / dt)
