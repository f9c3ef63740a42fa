"""Augmentation in raw point space, before the feature spec normalizes anything.

Why raw space: the runtime normalizes whatever MediaPipe gives it, so the network should learn from
faces that went through that same normalization after being moved, turned and jittered. Three
tools:
- `mirror_*`: a horizontally flipped face. Negating x alone would put the left eye's points on the
  right side but still *indexed* as the left eye; the landmark and blendshape indices are swapped
  with the tables in `train.mirror_table` (mp478, derived by `train.make_mirror_table`) and
  `realtime.layouts.IBUG68_MIRROR`.
- `synthetic_windows`: a still photo becomes T video frames: a small head pose with a smooth drift
  and a shake (3D rotations for 3D points), per-frame landmark and blendshape jitter, and
  optionally an onset from a neutral face, so the temporal model learns to be stable on live input.
- `sliding_windows`: real sequences (RAVDESS, AFEW-VA) cut into windows of T frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emoview.realtime.layouts import IBUG68_MIRROR
from emoview.realtime.spec import FeatureSpec
from emoview.train.mirror_table import BLENDSHAPE_MIRROR, MP478_MIRROR

POINT_MIRROR = {"mp478": np.array(MP478_MIRROR), "ibug68": np.array(IBUG68_MIRROR)}


def mirror_points(points: np.ndarray, layout: str) -> np.ndarray:
    """Mirror (..., P, D) points of `layout`: negate x, then swap left/right indices."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[..., 0] *= -1.0
    return out[..., POINT_MIRROR[layout], :]


def mirror_blendshapes(blendshapes: np.ndarray) -> np.ndarray:
    return np.asarray(blendshapes)[..., list(BLENDSHAPE_MIRROR)]


@dataclass
class Motion:
    """How a still becomes a clip. Angles in degrees, distances in eye distances."""

    pose_deg: float = 8.0  # fixed head pose of the whole window (per axis, uniform +-)
    drift_deg: float = 3.0  # slow turn from the first to the last frame
    shake_deg: float = 0.7  # per-frame rotation noise
    shift: float = 0.05  # per-frame translation noise
    scale: float = 0.03  # per-window size change (relative)
    point_jitter: float = 0.012  # per-frame, per-point landmark noise
    blend_jitter: float = 0.02  # per-frame blendshape noise
    onset_prob: float = 0.0  # share of windows that start from a neutral face


def rotations(angles: np.ndarray) -> np.ndarray:
    """(..., 3) yaw, pitch, roll in radians -> (..., 3, 3) rotation matrices."""
    yaw, pitch, roll = np.moveaxis(angles, -1, 0)
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry


def eye_distance(points: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    layout = spec.layout_def
    right = points[..., list(layout.right_eye), :2].mean(axis=-2)
    left = points[..., list(layout.left_eye), :2].mean(axis=-2)
    return np.linalg.norm(left - right, axis=-1)


def synthetic_windows(
    points: np.ndarray,
    blendshapes: np.ndarray | None,
    spec: FeatureSpec,
    frames: int,
    rng: np.random.Generator,
    motion: Motion,
    neutral: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(B, P, D) still faces -> (B, T, P, D) moving, jittering faces (+ (B, T, 52) blendshapes).

    `neutral` is (points (P, D) in a face's normalized frame, blendshapes (52,)): a mean neutral
    face used for onsets, placed into each face's own position, size and pose.
    """
    b, p, d = points.shape
    pts = np.asarray(points, dtype=np.float32)  # float32 halves the cost; features are built in float64
    unit = eye_distance(pts, spec)[:, None, None, None]  # (B,1,1,1)
    shapes = None if blendshapes is None else np.repeat(np.asarray(blendshapes, np.float32)[:, None], frames, axis=1)
    seq = np.repeat(pts[:, None], frames, axis=1)  # (B, T, P, D)
    centre = pts.mean(axis=1)[:, None, None]  # (B, 1, 1, D)
    if neutral is not None and motion.onset_prob > 0 and frames > 1:
        seq, shapes = _onset(seq, shapes, pts, spec, neutral, rng, motion.onset_prob)
        centre = seq.mean(axis=2, keepdims=True)
    t = np.linspace(0.0, 1.0, frames)[None, :, None]
    rad = np.pi / 180.0
    pose = rng.uniform(-1, 1, (b, 1, 3)) * motion.pose_deg
    drift = rng.uniform(-1, 1, (b, 1, 3)) * motion.drift_deg
    angles = ((pose + (t - 0.5) * drift + rng.normal(0, motion.shake_deg, (b, frames, 3))) * rad).astype(np.float32)
    local = seq - centre
    if d == 3:
        local = local @ np.swapaxes(rotations(angles), -1, -2)  # (B,T,P,3) @ (B,T,3,3)
    else:  # 2D data: in-plane roll plus foreshortening from yaw and pitch
        c, s = np.cos(angles[..., 2]), np.sin(angles[..., 2])
        rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)
        local = local @ rot
        local = local * np.stack([np.cos(angles[..., 0]), np.cos(angles[..., 1])], -1)[:, :, None]
    size = (1.0 + rng.uniform(-1, 1, (b, 1, 1, 1)) * motion.scale).astype(np.float32)
    shift = (rng.normal(0, motion.shift, (b, frames, 1, d)) * unit).astype(np.float32)
    shift[..., 2:] = 0.0
    jitter = gaussian(rng, (b, frames, p, d)) * (motion.point_jitter * unit).astype(np.float32)
    out = (local * size + centre + shift + jitter).astype(np.float32)
    if shapes is not None:
        noise = rng.standard_normal(shapes.shape, dtype=np.float32) * np.float32(motion.blend_jitter)
        shapes = np.clip(shapes + noise, 0.0, 1.0).astype(np.float32)
    return out, shapes


_BANK: np.ndarray | None = None


def gaussian(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise, cut at a random offset from a fixed bank of 2^24 values.

    Drawing millions of fresh normals per batch was a third of the batch time; a random window
    into a large fixed bank is as good for jitter and costs a copy.
    """
    global _BANK
    if _BANK is None:
        _BANK = np.random.default_rng(20240).standard_normal(1 << 24, dtype=np.float32)
    size = int(np.prod(shape))
    if size > len(_BANK) // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, len(_BANK) - size))
    return _BANK[start : start + size].reshape(shape)


def _onset(seq, shapes, pts, spec, neutral, rng, prob):
    """Blend the first frames of some windows from a neutral face into the expression."""
    from emoview.train.features import batch_normalize

    b, frames = seq.shape[:2]
    chosen = rng.random(b) < prob
    if not chosen.any():
        return seq, shapes
    end = rng.integers(max(1, frames // 3), max(2, 2 * frames // 3) + 1, b)
    alpha = np.clip(np.arange(frames)[None, :] / end[:, None], 0.0, 1.0)
    alpha[~chosen] = 1.0
    # the neutral face in each face's own frame: an affine least-squares map normalized -> raw
    # per face absorbs its centre, size and pose
    normed = batch_normalize(pts, spec).astype(np.float64)  # (B, P, dims)
    neutral_pts, neutral_shapes = neutral
    n_design = np.concatenate([neutral_pts, np.ones((len(neutral_pts), 1))], axis=-1)
    placed = pts.copy()
    for i in np.flatnonzero(chosen):
        design = np.concatenate([normed[i], np.ones((len(normed[i]), 1))], axis=-1)
        placed[i] = n_design @ np.linalg.lstsq(design, pts[i], rcond=None)[0]
    a = alpha[:, :, None, None]
    seq = a * seq + (1.0 - a) * placed[:, None]
    if shapes is not None:
        shapes = alpha[:, :, None] * shapes + (1.0 - alpha[:, :, None]) * neutral_shapes[None, None]
    return seq, shapes


def sliding_windows(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    """(start, stop) of windows over a sequence; a short sequence gives one window (padded later)."""
    if length <= window:
        return [(0, length)]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)  # the tail is not lost
    return [(s, s + window) for s in starts]


def pad_window(frames: np.ndarray, window: int) -> np.ndarray:
    """Repeat the last frame of a short sequence up to `window` frames (as a paused video would)."""
    if len(frames) >= window:
        return frames[:window]
    return np.concatenate([frames, np.repeat(frames[-1:], window - len(frames), axis=0)])
