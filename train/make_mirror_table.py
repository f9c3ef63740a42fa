"""Derive the left/right mirror tables for MediaPipe's 478 landmarks and 52 blendshapes.

    python -m emoview.train.make_mirror_table [--face-model PATH] [--images N]   # rewrites train/mirror_table.py

Mirroring a face is not just x -> -x: the subject's left eye must become the right eye, so vertex
indices are permuted too. Two sources, so the table is reproducible and checked:
- vertices 0..467: MediaPipe's canonical face mesh, stored inside face_landmarker.task
  (geometry_pipeline_metadata_landmarks.binarypb), is exactly symmetric: vertex i's mirror is the
  vertex at (-x, y, z).
- iris vertices 468..477 are not in that mesh: they are matched empirically by running the
  landmarker on real CK+ images and on their horizontal flips (Hungarian assignment on the mean
  distance after un-flipping). The same run cross-checks the mesh table on all 468 vertices and the
  Left/Right blendshape swap (whose names are read from the landmarker's own output).
"""

from __future__ import annotations

import argparse
import struct
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("mirror_table.py")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes):
    """Minimal protobuf wire-format walker: (field number, value) pairs."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i : i + size], i + size
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, value


def canonical_mesh(task_path: Path) -> np.ndarray:
    """(468, 3) vertices of the canonical mesh (GeometryPipelineMetadata.canonical_mesh.vertex_buffer)."""
    blob = zipfile.ZipFile(task_path).read("geometry_pipeline_metadata_landmarks.binarypb")
    mesh = next(value for number, value in _fields(blob) if number == 1)
    floats = [struct.unpack("<f", v)[0] for number, v in _fields(mesh) if number == 3]
    return np.array(floats, dtype=np.float64).reshape(-1, 5)[:, :3]  # x, y, z, u, v


def mesh_mirror(vertices: np.ndarray) -> np.ndarray:
    mirrored = vertices * np.array([-1.0, 1.0, 1.0])
    distance = np.linalg.norm(mirrored[:, None] - vertices[None], axis=-1)
    perm = distance.argmin(axis=1)
    assert distance.min(axis=1).max() < 1e-4, "canonical mesh is not symmetric"
    return perm


def observed_pairs(task_path: Path, images: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Normalised points and blendshapes of each image and of its flip (flip un-mirrored in x)."""
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from emoview.realtime.faces import StillFaceFinder, frame_crop, read_image

    names: list[str] = []
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task_path)), output_face_blendshapes=True,
        min_face_detection_confidence=0.1, min_face_presence_confidence=0.1,
    )
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        framed, _, _ = frame_crop(read_image(images[0]), 192, 0.3)
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=framed[:, :, ::-1].copy()))
        names = [c.category_name for c in result.face_blendshapes[0]]
    pts, pts_flip, bs, bs_flip = [], [], [], []
    with StillFaceFinder(task_path) as finder:
        for path in images:
            image = read_image(path)
            a, b = finder.find(image), finder.find(cv2.flip(image, 1))
            if not a or not b:
                continue
            p, q = a[0].points.astype(np.float64), b[0].points.astype(np.float64)
            q[:, 0] = image.shape[1] - q[:, 0]
            scale = np.linalg.norm(p[33] - p[263])
            centre = p[:468].mean(axis=0)
            pts.append((p - centre) / scale)
            pts_flip.append((q - centre) / scale)
            bs.append(a[0].blendshapes)
            bs_flip.append(b[0].blendshapes)
    return np.array(pts), np.array(pts_flip), np.array(bs), np.array(bs_flip), names


def blendshape_mirror(names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    swap = lambda n: n.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")  # noqa: E731
    return np.array([index[swap(n)] for n in names])


def main(argv: list[str] | None = None) -> int:
    from scipy.optimize import linear_sum_assignment

    from emoview.realtime.face_model import resolve_face_model
    from emoview.train.read_images import read_image_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--face-model")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ckplus48")
    parser.add_argument("--images", type=int, default=120)
    args = parser.parse_args(argv)
    task = resolve_face_model(args.face_model)

    perm = mesh_mirror(canonical_mesh(task))
    items = read_image_folder(args.data)
    chosen = [it.path for it in items[:: max(1, len(items) // args.images)]][: args.images]
    p, q, bs, bs_flip, names = observed_pairs(task, chosen)
    # flipped vertex j sits where the original's mirror vertex is: cost[j, i] = mean |q_j - p_i|
    cost = np.linalg.norm(q[:, :, None, :2] - p[:, None, :, :2], axis=-1).mean(axis=0)
    agree = float(np.mean(cost[:468, :468].argmin(axis=1) == perm))
    iris = np.arange(468, 478)
    rows, cols = linear_sum_assignment(cost[np.ix_(iris, iris)])
    full = np.concatenate([perm, iris[cols[np.argsort(rows)]]])
    assert sorted(full) == list(range(478)) and np.all(full[full] == np.arange(478)), "not an involution"
    bperm = blendshape_mirror(names)
    # a flip should reverse each Left/Right pair's asymmetry: negative correlation means swap them
    pairs = [(i, int(j)) for i, j in enumerate(bperm) if j > i and np.std(bs[:, i] - bs[:, j]) > 0.02]
    corr = np.median([np.corrcoef(bs[:, i] - bs[:, j], bs_flip[:, i] - bs_flip[:, j])[0, 1] for i, j in pairs])
    residual = np.linalg.norm(q - p[:, full], axis=-1).mean()
    summary = (
        f"{len(p)} CK+ images with their flips: mesh table agrees with nearest observed vertex for "
        f"{100 * agree:.1f}% of 468 vertices; mean residual after mirroring {residual:.4f} eye distances; "
        f"Left-Right asymmetry of {len(pairs)} varying blendshape pairs vs the flip's: median r = {corr:+.2f}"
    )
    print(summary)
    OUT.write_text(
        '"""Left/right mirror tables, generated by `python -m emoview.train.make_mirror_table` (do not edit).\n\n'
        f"{summary}.\n"
        '"""\n\n'
        f"MP478_MIRROR: tuple[int, ...] = {tuple(int(i) for i in full)}\n\n"
        f"BLENDSHAPE_NAMES: tuple[str, ...] = {tuple(names)}\n\n"
        f"BLENDSHAPE_MIRROR: tuple[int, ...] = {tuple(int(i) for i in bperm)}\n"
    )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
