"""`FeatureSpec.frame_features` for many frames at once.

Training builds hundreds of thousands of augmented frames per epoch; the runtime's per-frame
function costs ~0.2-0.6 ms each, which would make feature building slower than the network. This
is the same arithmetic as `realtime.spec.normalize_points`, broadcast over a batch.
`tests/test_train_features.py` checks it against `spec.frame_features` frame by frame (every
layout, dims and alignment, real faces and augmented ones), so training and the runtime cannot
drift apart silently: if the spec changes, that test fails.
"""

from __future__ import annotations

import numpy as np

from emoview.realtime.spec import N_BLENDSHAPES, FeatureSpec


def batch_normalize(points: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """(N, layout.size, >=dims) layout points -> (N, layout.size, dims) normalized, float32."""
    layout = spec.layout_def
    p = np.asarray(points, dtype=np.float64)[..., : spec.dims]
    right = p[:, list(layout.right_eye)].mean(axis=1)
    left = p[:, list(layout.left_eye)].mean(axis=1)
    centre = (right + left) / 2.0
    eye_axis = left - right
    scale = np.linalg.norm(eye_axis, axis=1)
    bad = ~np.isfinite(scale) | (scale < 1e-9)
    safe = np.where(bad, 1.0, scale)
    p = (p - centre[:, None]) / safe[:, None, None]
    if spec.align == "roll":
        angle = np.arctan2(eye_axis[:, 1], eye_axis[:, 0])
        c, s = np.cos(-angle), np.sin(-angle)
        rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], axis=1)  # (N, 2, 2)
        xy = p[..., :2] @ rot
        p = np.concatenate([xy, p[..., 2:]], axis=-1)
    else:
        ex = eye_axis / safe[:, None]
        down = p[:, layout.nose_base]
        ey = down - ex * np.sum(down * ex, axis=1, keepdims=True)
        norm = np.linalg.norm(ey, axis=1)
        bad |= norm < 1e-9
        ey = ey / np.where(norm < 1e-9, 1.0, norm)[:, None]
        ez = np.cross(ex, ey)
        p = p @ np.stack([ex, ey, ez], axis=2)
    p[bad] = 0.0
    return p.astype(np.float32)


def batch_features(spec: FeatureSpec, points: np.ndarray, blendshapes: np.ndarray | None = None) -> np.ndarray:
    """(N, feature_size) float32 from layout points (N, size, 2|3) and blendshapes (N, 52)."""
    aligned = batch_normalize(points, spec).reshape(len(points), -1)
    if not spec.blendshapes:
        return aligned
    shapes = np.asarray(blendshapes, dtype=np.float32).reshape(len(points), N_BLENDSHAPES)
    return np.concatenate([aligned, shapes], axis=1)
