"""Per-second emotion timelines: every analysed frame folded into one entry per face and second.

What is averaged: the model's raw per-frame output (`FaceResult.raw`), not the smoothed values
the overlay shows. The display smoothing is an exponential average with a 0.25 s time constant
tuned for a calm live label; averaging it again per second would count each frame twice and let
every second leak about a quarter second into the next (a smile that starts at 3.9 s would show
up as "mostly smiling" in second 4 only). The model window already spans ~0.6 s, and the
per-second mean is a smoother of its own, so the raw output gives each second exactly the evidence
of its own frames, independent of a display setting.

Seconds are counted from the first frame's media timestamp. Every face's list covers every second
of the analysed video; seconds in which a face was not seen are `None` (JSON `null`), so lists
from different faces line up by index and gaps are explicit rather than silently skipped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emoview.realtime.files import write_text
from emoview.realtime.pipeline import FrameResult

DECIMALS = 4  # probabilities in JSON and CSV: small files, and the CSV matches the JSON exactly
AGGREGATION = (
    "mean of the model's raw per-frame probabilities over the frames of each second in which the face was seen "
    "(not the display-smoothed values, which lag ~0.25 s and would leak one second into the next)"
)


@dataclass
class _FaceSeconds:
    """Running sums for one face: second index -> (sum of probabilities, frames)."""

    sums: dict[int, np.ndarray] = field(default_factory=dict)
    frames: dict[int, int] = field(default_factory=dict)


class TimelineBuilder:
    """Feed it every `FrameResult` in order (`add`), then ask for the timeline (`build`).

    Memory grows with faces x seconds, never with frames.
    """

    def __init__(self, labels: tuple[str, ...], fps: float) -> None:
        self.labels = tuple(labels)
        self.fps = fps
        self.frames = 0
        self.frames_with_faces = 0
        self._first_ms: float | None = None
        self._last_ms = 0.0
        self._faces: dict[int, _FaceSeconds] = {}
        self._frames_per_second: dict[int, int] = {}

    def add(self, result: FrameResult) -> None:
        timestamp = result.frame.timestamp_ms
        if self._first_ms is None:
            self._first_ms = timestamp
        self._last_ms = max(self._last_ms, timestamp)
        second = self.second_of(timestamp)
        self.frames += 1
        self.frames_with_faces += bool(result.faces)
        self._frames_per_second[second] = self._frames_per_second.get(second, 0) + 1
        for face in result.faces:
            raw = face.raw if face.raw is not None else face.probabilities
            seconds = self._faces.setdefault(face.id, _FaceSeconds())
            if second in seconds.sums:
                seconds.sums[second] += raw
                seconds.frames[second] += 1
            else:
                seconds.sums[second] = np.asarray(raw, dtype=np.float64).copy()
                seconds.frames[second] = 1

    def second_of(self, timestamp_ms: float) -> int:
        return int((timestamp_ms - (self._first_ms or 0.0)) // 1000.0)

    @property
    def seconds(self) -> int:
        """Seconds of video covered so far: up to the end of the last frame, rounded up."""
        if self._first_ms is None:
            return 0
        end_s = (self._last_ms - self._first_ms + 1000.0 / self.fps) / 1000.0
        return max(math.ceil(end_s - 1e-6), max(self._frames_per_second) + 1)

    def build(self, processing_fps: float, stopped_by: str = "end") -> dict:
        """The timeline as plain data: `faces` {id: [entry or None per second]} and a `summary`."""
        n = self.seconds
        faces = {str(face_id): [self._entry(track, s) for s in range(n)] for face_id, track in sorted(self._faces.items())}
        return {
            "seconds": n,
            "frames_per_second": [self._frames_per_second.get(s, 0) for s in range(n)],
            "aggregation": AGGREGATION,
            "faces": faces,
            "summary": self._summary(faces, processing_fps, stopped_by),
        }

    def _entry(self, track: _FaceSeconds, second: int) -> dict | None:
        frames = track.frames.get(second, 0)
        if frames == 0:
            return None
        mean = track.sums[second] / frames
        return {
            "t": second,
            "probabilities": {label: round(float(p), DECIMALS) for label, p in zip(self.labels, mean)},
            "label": self.labels[int(np.argmax(mean))],
            "frames": frames,
        }

    def _summary(self, faces: dict[str, list], processing_fps: float, stopped_by: str) -> dict:
        per_face = {face_id: time_shares(entries, self.labels) for face_id, entries in faces.items()}
        everyone = time_shares([e for entries in faces.values() for e in entries], self.labels)
        return {
            "dominant_emotion": everyone["dominant_emotion"],
            "time_share": everyone["time_share"],
            "faces": len(faces),
            "frames_analysed": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "seconds": self.seconds,
            "processing_fps": round(processing_fps, 2),
            "complete": stopped_by == "end",
            "stopped_by": stopped_by,
            "per_face": per_face,
        }


def time_shares(entries: list[dict | None], labels: tuple[str, ...]) -> dict:
    """Share of the time each emotion was the label, over the face-seconds given.

    Each second counts by its frames, so a second in which the face showed up for three frames
    weighs three frames, not a whole second. The dominant emotion is the largest share (ties go
    to the higher mean probability); `None` when no face was ever seen.
    """
    present = [e for e in entries if e is not None]
    weights = dict.fromkeys(labels, 0)
    mean_p = dict.fromkeys(labels, 0.0)
    for entry in present:
        weights[entry["label"]] += entry["frames"]
        for label in labels:
            mean_p[label] += entry["probabilities"][label] * entry["frames"]
    total = sum(weights.values())
    shares = {label: round(weights[label] / total, DECIMALS) if total else 0.0 for label in labels}
    dominant = max(labels, key=lambda label: (weights[label], mean_p[label])) if total else None
    return {
        "dominant_emotion": dominant,
        "time_share": shares,
        "seconds_present": len(present),
        "first_seen_s": present[0]["t"] if present else None,
        "last_seen_s": present[-1]["t"] if present else None,
    }


CSV_FIXED = ("face", "t", "present", "label", "frames")


def csv_rows(timeline: dict, labels: tuple[str, ...]) -> list[dict]:
    """One row per face and second, absent seconds included (present=0, empty label and probabilities)."""
    rows = []
    for face_id, entries in timeline["faces"].items():
        for second, entry in enumerate(entries):
            row = {"face": face_id, "t": second, "present": int(entry is not None), "label": "", "frames": 0}
            row.update({f"p_{label}": "" for label in labels})
            if entry is not None:
                row.update(label=entry["label"], frames=entry["frames"])
                row.update({f"p_{label}": entry["probabilities"][label] for label in labels})
            rows.append(row)
    return rows


def csv_fields(labels: tuple[str, ...]) -> list[str]:
    return [*CSV_FIXED, *(f"p_{label}" for label in labels)]


def csv_text(timeline: dict, labels: tuple[str, ...]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=csv_fields(labels))
    writer.writeheader()
    writer.writerows(csv_rows(timeline, labels))
    return text.getvalue()


def run_details(source, analyzer) -> dict:
    """What a timeline records beside its seconds: the video and the model it came from."""
    return {
        "video": {"path": str(source.path), "fps": round(source.fps, 3), "frames": source.frame_count, "size": list(source.size)},
        "model": {"path": str(analyzer.classifier.path), "labels": list(analyzer.labels), "spec": json.loads(analyzer.spec.to_json())},
    }


class Timeline:
    """A built timeline with its labels: `data` is the plain dict `analyze` writes as timeline.json.

    `faces` maps a face id to one entry (or None) per second; `summary` is the whole video's.
    """

    def __init__(self, data: dict, labels: tuple[str, ...]) -> None:
        self.data = data
        self.labels = tuple(labels)

    @property
    def faces(self) -> dict[str, list[dict | None]]:
        return self.data["faces"]

    @property
    def summary(self) -> dict:
        return self.data["summary"]

    @property
    def seconds(self) -> int:
        return self.data["seconds"]

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The JSON text; also written (whole or not at all) to `path` if given."""
        text = json.dumps(self.data, indent=1) + "\n"
        if path is not None:
            write_text(path, text)
        return text

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """One row per face and second (see `csv_rows`); also written to `path` if given."""
        text = csv_text(self.data, self.labels)
        if path is not None:
            write_text(path, text)
        return text

    def to_dataframe(self):
        """The CSV's rows as a pandas DataFrame (absent seconds: present=0, NaN probabilities)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Timeline.to_dataframe needs pandas: pip install pandas") from None
        frame = pd.DataFrame(csv_rows(self.data, self.labels), columns=csv_fields(self.labels))
        probabilities = [f"p_{label}" for label in self.labels]
        frame[probabilities] = frame[probabilities].replace("", float("nan")).astype(float)
        return frame

    def plot(self, path: str | os.PathLike, title: str = "") -> Path:
        """The PNG `emoview analyze` draws: one band of emotions per face over time."""
        from emoview.realtime.timeline_plot import plot_timeline

        return plot_timeline(self.data, self.labels, path, title=title)

    def __repr__(self) -> str:
        summary = self.summary
        return f"Timeline({self.seconds} s, {summary['faces']} face(s), mostly {summary['dominant_emotion']})"
