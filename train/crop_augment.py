"""Augmenting a batch of aligned face crops in one go, as torch tensors.

Why on the batch and not per image: a random similarity (rotation, scale, shift) for 256 crops is
one `affine_grid` + `grid_sample`, well under a millisecond, where per-image OpenCV warps in Python
would cost more than the CNN's step. Edges repeat the border, as `align_crop` does at run time.
The flip is the caller's (it must match the landmark mirror of the same items).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from emoview.train.config import CropAugment


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(B, S, S) uint8 -> (B, 1, S, S) float32 in 0..1: what the model's encoder takes."""
    return torch.from_numpy(np.ascontiguousarray(crops)).float().div_(255.0)[:, None]


def augment_crops(crops: np.ndarray, flip: np.ndarray | None, rng: np.random.Generator, cfg: CropAugment) -> torch.Tensor:
    x = to_tensor(crops)
    b = x.shape[0]
    angle = np.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg, b))
    scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale, b)
    shift = rng.uniform(-cfg.shift, cfg.shift, (b, 2)) * 2.0  # grid units span 2 per side
    mirror = np.where(flip, -1.0, 1.0) if flip is not None else np.ones(b)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    theta = np.zeros((b, 2, 3), np.float32)  # output -> input sampling grid
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos * mirror, -sin, shift[:, 0]
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * mirror, cos, shift[:, 1]
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    if cfg.blur > 0:
        blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        pick = torch.from_numpy(rng.random(b) < cfg.blur)[:, None, None, None]
        x = torch.where(pick, blurred, x)
    if cfg.light > 0:
        contrast = torch.from_numpy(rng.uniform(1 - cfg.light, 1 + cfg.light, b).astype(np.float32))[:, None, None, None]
        bright = torch.from_numpy(rng.uniform(-cfg.light / 2, cfg.light / 2, b).astype(np.float32))[:, None, None, None]
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean + bright).clamp_(0.0, 1.0)
    if cfg.erase > 0:
        x = _erase(x, rng, cfg.erase)
    return x


def _erase(x: torch.Tensor, rng: np.random.Generator, share: float) -> torch.Tensor:
    """A random rectangle (2-30 % of the crop) of random grey in `share` of the crops."""
    b, _, h, w = x.shape
    for i in np.flatnonzero(rng.random(b) < share):
        area = rng.uniform(0.02, 0.3) * h * w
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        eh, ew = min(h, int(round(math.sqrt(area * aspect)))), min(w, int(round(math.sqrt(area / aspect))))
        if eh < 1 or ew < 1:
            continue
        top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
        x[i, :, top : top + eh, left : left + ew] = float(rng.random())
    return x
