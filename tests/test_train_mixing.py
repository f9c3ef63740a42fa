"""Mixup and CutMix of a training batch: what is mixed, by how much, and that targets stay distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoview.train.mixing import mix_batch


def _batch(size: int = 8, side: int = 16):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(size, 3, 5, generator=gen)
    crops = torch.rand(size, 1, side, side, generator=gen)
    target = torch.softmax(torch.randn(size, 7, generator=gen), dim=1)
    return x, crops, target


def _draws(seed: int, alpha: float, size: int):
    """The weight and partners mix_batch draws from a generator seeded alike."""
    rng = np.random.default_rng(seed)
    return float(rng.beta(alpha, alpha)), torch.from_numpy(rng.permutation(size))


@pytest.mark.parametrize("kind, alpha", [("", 0.4), ("mixup", 0.0)])
def test_off_leaves_the_batch_alone(kind, alpha):
    x, crops, target = _batch()
    out = mix_batch(x, crops, target, np.random.default_rng(0), kind, alpha)
    assert out[0] is x and out[1] is crops and out[2] is target


def test_mixup_blends_items_crops_and_targets_with_one_weight():
    x, crops, target = _batch()
    lam, partner = _draws(3, 0.4, len(target))
    mx, mc, mt = mix_batch(x, crops, target, np.random.default_rng(3), "mixup", 0.4)
    assert 0.0 < lam < 1.0 and not torch.equal(partner, torch.arange(len(target)))
    assert torch.allclose(mx, lam * x + (1 - lam) * x[partner])
    assert torch.allclose(mc, lam * crops + (1 - lam) * crops[partner])
    assert torch.allclose(mt, lam * target + (1 - lam) * target[partner])
    assert torch.allclose(mt.sum(1), torch.ones(len(target)))


def test_a_landmark_only_model_with_no_crops_still_mixes_its_windows():
    x, _, target = _batch()
    mx, mc, mt = mix_batch(x, None, target, np.random.default_rng(1), "cutmix", 0.4)
    lam, partner = _draws(1, 0.4, len(target))
    assert mc is None and torch.allclose(mx, lam * x + (1 - lam) * x[partner])


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_pastes_one_rectangle_and_weighs_the_target_by_its_area(seed):
    x, crops, target = _batch()
    _, partner = _draws(seed, 1.0, len(target))
    mx, mc, mt = mix_batch(x, crops, target, np.random.default_rng(seed), "cutmix", 1.0)
    own = (mc == crops).all(dim=0)[0]  # (H, W): pixels every item kept
    pasted = (mc == crops[partner]).all(dim=0)[0]
    assert bool((own | pasted).all()), "every pixel is the item's own or its partner's"
    area = float((pasted & ~own).float().mean())
    rows, cols = torch.nonzero(pasted & ~own, as_tuple=True)
    if len(rows):  # the pasted pixels form one rectangle
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    lam = 1.0 - area
    assert torch.allclose(mt, lam * target + (1 - lam) * target[partner], atol=1e-6)
    assert torch.allclose(mx, lam * x + (1 - lam) * x[partner], atol=1e-6)
    assert torch.equal(crops, _batch()[1]), "the caller's crops are not changed in place"
