"""Mixing two training faces into one: mixup and CutMix, for the issue's "mixup if it helps".

Why try them: FER+'s votes already say many faces are a blend of two emotions, and a mixed face
with a mixed target is a cheap regulariser that asks for calibrated blends. Measured (model card):
with the crop-only recipe both cost accuracy (mixup 0.3 points, CutMix 1.9), so they are off by
default; lighter regularisation gained instead (three seeds 0.848-0.854 against the standard
recipe's four 0.838-0.853): the crop networks underfit more than they overfit.
- `mixup`: the whole item is a weighted mean of two (crops, landmark windows and targets alike).
- `cutmix`: a rectangle of the crop comes from another face, and the target is mixed by its
  area. Landmarks cannot be cut, so they are blended with the same weight as the targets.
The partner of each item is another item of the same batch (a random permutation); the weight is
Beta(alpha, alpha), one per batch, as in both papers.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def mix_batch(
    x: torch.Tensor, crops: torch.Tensor | None, target: torch.Tensor, rng: np.random.Generator, kind: str, alpha: float
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Mix each item of the batch with a random partner; returns (x, crops, target).

    `kind` is "" (off), "mixup" or "cutmix" (`config.CHOICES`, checked when the recipe is read)."""
    if not kind or alpha <= 0 or len(target) < 2:
        return x, crops, target
    lam = float(rng.beta(alpha, alpha))
    partner = torch.from_numpy(rng.permutation(len(target)))
    if kind == "cutmix" and crops is not None:
        crops, lam = _paste(crops, partner, lam, rng)
    elif crops is not None:
        crops = lam * crops + (1 - lam) * crops[partner]
    x = lam * x + (1 - lam) * x[partner]
    target = lam * target + (1 - lam) * target[partner]
    return x, crops, target


def _paste(crops: torch.Tensor, partner: torch.Tensor, lam: float, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
    """Paste a partner's rectangle covering about 1 - lam of each crop; the weight the area gives."""
    h, w = crops.shape[-2:]
    ch, cw = int(round(h * math.sqrt(1 - lam))), int(round(w * math.sqrt(1 - lam)))
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    top, bottom = max(cy - ch // 2, 0), min(cy + (ch + 1) // 2, h)
    left, right = max(cx - cw // 2, 0), min(cx + (cw + 1) // 2, w)
    mixed = crops.clone()
    mixed[..., top:bottom, left:right] = crops[partner, ..., top:bottom, left:right]
    return mixed, 1.0 - (bottom - top) * (right - left) / (h * w)
