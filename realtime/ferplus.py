"""Reader for FER+ labels: ten annotators' votes per FER2013 image, in `fer2013/labels.csv`.

In the runtime package because `emoview eval --labels ferplus` scores against them; training reads
the same votes (soft targets, majority or plurality labels) through this module.

The original FER2013 labels are noisy (one label per image, often wrong); FER+ re-annotated every
image by ten people. We follow the FER+ reference's "majority" rule: votes of a single annotator are
treated as outliers and removed, and an image gets a label only if one emotion then holds more than
half of the remaining votes. Images whose winner is contempt, unknown or not-a-face are dropped,
because FER2013 has no such class.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoview.realtime.errors import InputError

VOTE_COLUMNS = (
    "ferplus_neutral", "ferplus_happiness", "ferplus_surprise", "ferplus_sadness", "ferplus_anger",
    "ferplus_disgust", "ferplus_fear", "ferplus_contempt", "ferplus_unknown", "ferplus_NF",
)
VOTE_LABELS = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", None, None, None)


@dataclass(frozen=True)
class FerPlusRow:
    path: Path  # absolute image path
    fer_label: str  # the original FER2013 label
    votes: np.ndarray  # (10,) counts in VOTE_COLUMNS order
    label: str | None  # FER+ majority label, None when there is no usable majority


def majority(votes: np.ndarray) -> str | None:
    """FER+ majority: drop single votes, then a label needs more than half of what remains."""
    kept = np.where(votes > 1, votes, 0)
    total = kept.sum()
    if total == 0:
        return None
    winner = int(np.argmax(kept))
    return VOTE_LABELS[winner] if kept[winner] > 0.5 * total else None


def plurality(votes: np.ndarray) -> str | None:
    """FER+ plurality, the yardstick `emoview eval --labels ferplus` scores against: the one class
    with the most of the ten votes. None for a tie at the top, or when contempt, unknown or
    not-a-face wins (FER2013 has no such class): those images are left out and counted."""
    votes = np.asarray(votes)
    top = votes.max()
    if top <= 0 or int((votes == top).sum()) > 1:
        return None
    return VOTE_LABELS[int(np.argmax(votes))]


def left_out_reason(votes: np.ndarray) -> str:
    """Why `plurality` gave no emotion: "tie", "contempt", "unknown" or "not a face"."""
    votes = np.asarray(votes)
    if int((votes == votes.max()).sum()) > 1:
        return "tie"
    return ("contempt", "unknown", "not a face")[int(np.argmax(votes)) - 7]


def vote_distribution(votes: np.ndarray, labels: list[str]) -> np.ndarray | None:
    """The annotators' votes spread over `labels` (soft training target), or None when the image
    is mostly not a readable face (unknown + not-a-face outvote every emotion) or has no emotion vote."""
    votes = np.asarray(votes, dtype=np.float32)
    out = np.zeros(len(labels), np.float32)
    for count, name in zip(votes, VOTE_LABELS):
        if name in labels:
            out[labels.index(name)] += count
    unreadable = votes[8] + votes[9]
    if out.sum() == 0 or unreadable >= out.max():
        return None
    return out / out.sum()


def read_ferplus(labels_csv: str | Path) -> dict[Path, FerPlusRow]:
    """Rows keyed by absolute image path (the csv's `file` is relative to its own folder)."""
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise InputError(f"{labels_csv} does not exist; FER+ labels live in fer2013/labels.csv")
    rows = {}
    with open(labels_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "label", *VOTE_COLUMNS} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{labels_csv} lacks FER+ columns {sorted(missing)}")
        for row in reader:
            votes = np.array([int(row[c] or 0) for c in VOTE_COLUMNS], dtype=np.int32)
            path = (labels_csv.parent / row["file"]).resolve()
            rows[path] = FerPlusRow(path, row["label"], votes, majority(votes))
    return rows
