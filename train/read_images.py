"""Reader for image folders `<root>/<class>/<file>` (FER2013 train/val, CK+48).

Class folders are matched to emotions through `train.labels.canonical`; folders that are not an
emotion are ignored, so a stray "misc/" cannot poison the label set. Where a file name starts with
a subject id (CK+: `S010_004_00000019.png`) it is kept, because frames of one person must never be
split between training and validation: the model would be graded on faces it has memorised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from emoview.realtime.errors import InputError
from emoview.train.labels import canonical

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
SUBJECT_RE = re.compile(r"^(S\d{3,})_")


@dataclass(frozen=True)
class ImageItem:
    path: Path
    label: str  # canonical class name
    subject: str | None  # person id where the dataset has one
    folder: str  # the class folder's own name, e.g. "anger"


def subject_of(name: str) -> str | None:
    match = SUBJECT_RE.match(name)
    return match.group(1) if match else None


def is_image_folder(root: Path) -> bool:
    """True if `root` has at least one emotion-named subfolder."""
    return root.is_dir() and any(d.is_dir() and canonical(d.name) for d in root.iterdir())


def read_image_folder(root: str | Path) -> list[ImageItem]:
    """All images under emotion-named class folders, sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; pass a dataset folder laid out as <root>/<class>/<image>")
    items = []
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        label = canonical(folder.name)
        if label is None:
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                items.append(ImageItem(path, label, subject_of(path.name), folder.name))
    if not items:
        known = [d.name for d in root.iterdir() if d.is_dir() and canonical(d.name)]
        what = "no images in its class folders" if known else "no emotion class folders (e.g. happy/, sad/)"
        raise InputError(f"{root} has {what}; pass a folder laid out as <root>/<class>/<image>")
    return items
