"""The aligned face crop: what the face looks like, framed the same way for training and live.

The crop is cut with a similarity transform (rotation, uniform scale, shift) that puts three rigid
points of the face, the two eye centres and the nose base, where they sit on an average FER2013
face (measured on 3,000 training images: eyes at 32.5 % / 67.5 % across and 39 % down, nose base
at 64 % down). Rigid points only: a mouth that opens must not shrink the face. The landmarks that
place it are the ones MediaPipe already found, so there is no second detector, and a 48x48
FER2013 image comes out almost unchanged while a face anywhere in a 1080p frame comes out framed
like one. Light is normalised inside the model (per-crop mean and spread), not here, so the model
file alone decides it.

`align_crop` is the one function both sides call: training on the stills (with the points
extraction cached for them) and the runtime on every tracked face of every frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from emoview.realtime.layouts import Layout

# canonical positions as fractions of the crop side: right eye, left eye, nose base
# ("right" is the subject's right, on the image's left)
CANONICAL = np.array([[0.325, 0.393], [0.675, 0.393], [0.502, 0.640]], dtype=np.float64)


def anchor_points(points: np.ndarray, layout: Layout) -> np.ndarray:
    """The three anchors (3, 2) in image pixels from a face's layout points (n, 2|3)."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    return np.stack([p[list(layout.right_eye)].mean(axis=0), p[list(layout.left_eye)].mean(axis=0), p[layout.nose_base]])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (2, 3) that maps points `src` onto `dst` (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var = float((s**2).sum())
    if var < 1e-12:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # for 2D, the optimal rotation+scale is a complex ratio: sum(d * conj(s)) / sum(|s|^2)
    zs, zd = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    k = complex((zd * np.conj(zs)).sum() / var)
    a, b = k.real, k.imag
    matrix = np.array([[a, -b, 0.0], [b, a, 0.0]])
    matrix[:, 2] = mu_d - matrix[:, :2] @ mu_s
    return matrix


def crop_transform(points: np.ndarray, layout: Layout, size: int) -> np.ndarray:
    """The (2, 3) image -> crop transform for one face."""
    return similarity(anchor_points(points, layout), CANONICAL * size)


def to_grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def align_crop(image: np.ndarray, points: np.ndarray, layout: Layout, size: int) -> np.ndarray:
    """The face's aligned grey crop (size, size) uint8, from a BGR or grey image and its points.

    Pixels outside the image repeat its edge (a face at the border, or a tight 48x48 still). The
    warp comes first and the grey conversion after, on the small crop: converting a whole 1080p
    frame for a 48x48 face would cost more than the warp itself.
    """
    matrix = crop_transform(points, layout, size)
    return to_grey(cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
