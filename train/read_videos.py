"""Reader for a folder of labelled videos: `<root>/labels.csv` with columns `file,label[,subject]`.

This is how new video data enters training: put the clips in a folder, write one line per clip,
run `emoview extract` (MediaPipe over every frame in video mode, exactly as the live analyzer
tracks a face) and train on real sliding windows. `file` is relative to the folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from emoview.realtime.errors import InputError
from emoview.train.labels import canonical

LABELS_FILE = "labels.csv"
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


@dataclass(frozen=True)
class VideoItem:
    path: Path
    label: str
    subject: str | None


def is_video_folder(root: Path) -> bool:
    labels = root / LABELS_FILE
    if not labels.is_file():
        return False
    with open(labels, newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle), None)
    return bool(row and Path(row.get("file") or "").suffix.lower() in VIDEO_SUFFIXES)


def read_video_folder(root: str | Path) -> list[VideoItem]:
    root = Path(root)
    labels = root / LABELS_FILE
    if not labels.is_file():
        raise InputError(f"{root} has no {LABELS_FILE}; write one line per video: file,label[,subject]")
    items = []
    with open(labels, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"file", "label"} <= set(reader.fieldnames):
            raise InputError(f"{labels} needs a header with columns file,label (and optionally subject)")
        for line, row in enumerate(reader, start=2):
            path = root / row["file"]
            label = canonical(row["label"] or "")
            if label is None:
                raise InputError(f"{labels} line {line}: unknown emotion {row['label']!r}; use e.g. happy, sad, angry")
            if not path.is_file():
                raise InputError(f"{labels} line {line}: {path} does not exist")
            items.append(VideoItem(path, label, (row.get("subject") or "").strip() or None))
    if not items:
        raise InputError(f"{labels} lists no videos; add lines file,label")
    return items
