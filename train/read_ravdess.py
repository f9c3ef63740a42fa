"""Reader for OpenFace 2.x landmark CSVs, as in the RAVDESS Facial Landmark Tracking dataset (seed B).

OpenFace writes `x_0..x_67, y_0..y_67` in pixels. Two header styles exist in the wild: the compact
one (`frame,timestamp,...`, RAVDESS) and OpenFace's own with a space after every comma
(`frame, timestamp, ...`), so column names are stripped before lookup; CRLF line ends are handled
by the csv module. RAVDESS encodes the label in the file name:
modality-channel-emotion-intensity-statement-repetition-actor, e.g. 01-01-03-02-01-01-01 is
emotion 03 (happy), intensity 02 (strong), actor 01. Actors are the subjects: validation actors
never appear in training (speaker-independent split, as in seed B).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoview.realtime.errors import InputError

EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fear", 7: "disgust", 8: "surprise"}
NAME_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class LandmarkTrack:
    """68-point landmarks of one video, (frames, 68, 2) pixels; `ok` marks frames OpenFace trusted."""

    path: Path
    points: np.ndarray
    ok: np.ndarray
    label: str | None = None
    subject: str | None = None
    intensity: int | None = None


def parse_name(name: str) -> dict | None:
    """Emotion, intensity and actor from a RAVDESS file name, or None if it is not one."""
    match = NAME_RE.match(name)
    if not match:
        return None
    fields = [int(g) for g in match.groups()]
    if fields[2] not in EMOTIONS:
        return None
    return {"emotion": EMOTIONS[fields[2]], "intensity": fields[3], "actor": fields[6]}


def read_openface_csv(path: str | Path) -> LandmarkTrack:
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InputError(f"{path} is empty; expected an OpenFace CSV with x_0..x_67, y_0..y_67")
    header = [name.strip() for name in rows[0]]
    index = {name: i for i, name in enumerate(header)}
    wanted = [f"x_{k}" for k in range(68)] + [f"y_{k}" for k in range(68)]
    missing = [name for name in wanted if name not in index]
    if missing:
        raise InputError(f"{path} has no 68-point landmark columns ({missing[0]} missing); is it OpenFace 2.x output?")
    columns = [index[name] for name in wanted]
    body = [row for row in rows[1:] if row]
    values = np.array([[float(row[c]) for c in columns] for row in body], dtype=np.float32)
    points = np.stack([values[:, :68], values[:, 68:]], axis=-1)
    ok = np.ones(len(body), dtype=bool)
    if "success" in index:
        ok &= np.array([float(row[index["success"]]) > 0.5 for row in body])
    if "confidence" in index:
        ok &= np.array([float(row[index["confidence"]]) >= 0.5 for row in body])
    meta = parse_name(path.name) or {}
    actor = meta.get("actor")
    return LandmarkTrack(path, points, ok, meta.get("emotion"), f"actor{actor:02d}" if actor else None, meta.get("intensity"))


def read_ravdess_folder(root: str | Path) -> list[LandmarkTrack]:
    """Every RAVDESS-named CSV under `root` (recursively), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; pass the folder of RAVDESS landmark CSVs")
    files = sorted(p for p in root.rglob("*.csv") if parse_name(p.name))
    if not files:
        raise InputError(f"{root} has no RAVDESS landmark CSVs (names like 01-01-03-02-01-01-01.csv)")
    return [read_openface_csv(p) for p in files]
