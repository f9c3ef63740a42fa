"""The emotion model on still images: every face of each image, each a one-frame window (T=1).

Faces are found exactly as training extraction finds them (`StillFaceFinder`, which frames tiny
FER2013/CK+ crops), turned into features by the model's own spec, and all faces of all images are
classified in a few batched ONNX Runtime calls. Face finding dominates the time (about 15 ms per
image); the model itself is a fraction of a millisecond per batch row. `emoview predict`, `emoview
eval` and `emoview.predict()` all go through `classify_images`, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

BATCH = 256  # rows per ONNX Runtime call: big enough to amortise the call, small enough for memory
MAX_FACES = 20  # faces per image unless asked otherwise: a group photo, not a stadium


@dataclass
class StillFace:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels
    points: np.ndarray  # (478, 3) landmarks, isotropic pixels
    probabilities: np.ndarray | None = None  # (classes,), filled in by the batched model call

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


@dataclass
class ImageResult:
    path: str  # as found: the argument, or the folder argument joined with the relative path
    faces: list[StillFace] = field(default_factory=list)  # in the order MediaPipe found them

    @property
    def largest(self) -> StillFace | None:
        """The most prominent face: what an image's one answer (eval, predict's top level) is about."""
        return max(self.faces, key=lambda face: face.area, default=None)

    @property
    def face(self) -> bool:
        return bool(self.faces)

    @property
    def probabilities(self) -> np.ndarray | None:
        largest = self.largest
        return None if largest is None else largest.probabilities


def image_files(folder: Path) -> list[Path]:
    """Every non-hidden file under `folder`, recursively, in a stable order (by path components)."""
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def gather_paths(arguments: Iterable[str]) -> list[Path]:
    """The files named and the files inside the folders named; a missing path is the user's error."""
    from emoview.realtime.errors import InputError

    files: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files.extend(image_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{argument} does not exist; pass image files or folders of images")
    return files


def classify_images(
    images: Iterable[tuple[str, np.ndarray | None]],
    finder,
    classifier,
    on_image: Callable[[], None] | None = None,
) -> tuple[list[ImageResult], list[str]]:
    """Find every face of each (name, BGR image or None if unreadable), then classify all faces in batches.

    Returns a result per readable image (in input order) and the names of the unreadable ones,
    which are skipped: a folder with a stray text file or a truncated download is still worth scoring.
    """
    spec = classifier.spec
    results: list[ImageResult] = []
    unreadable: list[str] = []
    rows: list[np.ndarray] = []
    crops: list[np.ndarray] = []  # fused models also look at the face
    owners: list[StillFace] = []
    for name, image in images:
        if on_image is not None:
            on_image()
        if image is None:
            unreadable.append(name)
            continue
        result = ImageResult(name)
        for face in finder.find(image):
            still = StillFace(face.box, face.points)
            rows.append(spec.frame_features(spec.select_points(face.points), face.blendshapes))
            if spec.appearance:
                crops.append(spec.face_crop(image, face.points))
            owners.append(still)
            result.faces.append(still)
        results.append(result)
    if rows:
        windows = np.stack(rows)[:, None, :]  # (N, T=1, F)
        faces = np.stack(crops) if crops else None
        probs = np.concatenate([
            classifier.predict(windows[i : i + BATCH], None if faces is None else faces[i : i + BATCH])
            for i in range(0, len(windows), BATCH)
        ])
        for owner, p in zip(owners, probs):
            owner.probabilities = p
    return results, unreadable


def read_files(files: Iterable[Path]):
    """(path, BGR image or None) for each file, read one at a time as `classify_images` asks."""
    from emoview.realtime.faces import read_image

    for path in files:
        yield str(path), read_image(path)
