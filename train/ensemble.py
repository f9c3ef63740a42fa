"""Several trained networks as one model: their calibrated scores averaged, one file at run time.

Why: two networks that learnt the same faces differently (a narrow fused one and a wider crop-only
one) are right on different faces, and the mean of their calibrated logits beat either alone (the
model shipped until 2026-12-04; its successor is one network as good as that pair, see the card).
The runtime cannot tell: the ensemble takes the same inputs and returns the same outputs as one
fused `EmotionNet` (`step`), its per-frame embedding being the members' embeddings side by side,
so the ring buffer of embeddings and the once-per-frame encoder work unchanged.

Checkpoints say which network they hold through their `model_config`: an `EmotionNet`'s config, or
`{"members": [config, ...], "temperature": T}` for an ensemble; `network` builds either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emoview.train.model import EmotionNet, ModelConfig


@dataclass
class EnsembleConfig:
    members: tuple[ModelConfig, ...]
    temperature: float = 1.0  # applied to the mean of the members' calibrated logits

    @property
    def features(self) -> int:
        return self.members[0].features

    @property
    def classes(self) -> int:
        return self.members[0].classes

    @property
    def crop(self) -> int:
        return max(m.crop for m in self.members)

    @property
    def embedding(self) -> int:
        return sum(m.embedding for m in self.members)

    def to_dict(self) -> dict:
        return {"members": [m.to_dict() for m in self.members], "temperature": self.temperature}

    @classmethod
    def from_dict(cls, data: dict) -> "EnsembleConfig":
        return cls(tuple(ModelConfig.from_dict(m) for m in data["members"]), float(data.get("temperature", 1.0)))


class EnsembleNet(nn.Module):
    """The members' logits, each divided by its own temperature, averaged; `EmotionNet`'s interface."""

    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__()
        first = config.members[0]
        for member in config.members[1:]:
            if (member.features, member.classes) != (first.features, first.classes):
                raise ValueError("ensemble members must take the same features and give the same classes")
            if member.crop and first.crop and member.crop != first.crop:
                raise ValueError(f"ensemble members cut crops of different sizes ({first.crop} and {member.crop})")
        self.config = config
        self.members = nn.ModuleList(EmotionNet(m) for m in config.members)

    @property
    def encoder(self):
        """Non-None when some member looks at the face (what callers test to pass crops)."""
        return next((m.encoder for m in self.members if m.encoder is not None), None)

    def _split(self, embeddings: torch.Tensor | None) -> list[torch.Tensor | None]:
        if embeddings is None:
            return [None] * len(self.members)
        parts, start = [], 0
        for member in self.members:
            size = member.config.embedding if member.encoder is not None else 0
            parts.append(embeddings[..., start : start + size] if size else None)
            start += size
        return parts

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.embed(crops) for m in self.members if m.encoder is not None], dim=1)

    def logits(self, x: torch.Tensor, crops: torch.Tensor | None = None, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        total = 0.0
        for member, part in zip(self.members, self._split(embeddings)):  # a member given its embeddings ignores crops
            total = total + member.logits(x, crops, part) / member.config.temperature
        return total / len(self.members)

    def forward(self, x: torch.Tensor, crops: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(self.logits(x, crops) / self.config.temperature, dim=-1)

    def step(self, x: torch.Tensor, crop: torch.Tensor, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`EmotionNet.step` for the whole ensemble: each member encodes the new crop once and sees
        its own slice of the earlier embeddings; the new embeddings are returned side by side."""
        new = self.embed(crop)
        sequence = torch.cat([embeddings[:, :-1], new[:, None, :]], dim=1)
        return torch.softmax(self.logits(x, embeddings=sequence) / self.config.temperature, dim=-1), new


def network(config: dict) -> EmotionNet | EnsembleNet:
    """The untrained network a checkpoint's (or a model file's) `model_config` describes."""
    if "members" in config:
        return EnsembleNet(EnsembleConfig.from_dict(config))
    return EmotionNet(ModelConfig.from_dict(config))


def combine(models: list[EmotionNet], flip_average: list[bool] | None = None) -> EmotionNet | EnsembleNet:
    """One network from trained ones (eval mode): the model itself if alone, else their ensemble.
    `flip_average[i]` turns on model i's mirrored-crop averaging (`ModelConfig.flip_average`)."""
    flip_average = flip_average or [False] * len(models)
    for model, flip in zip(models, flip_average, strict=True):
        if not isinstance(model, EmotionNet):
            raise ValueError("an ensemble is made of trained networks, not of other ensembles")
        model.config.flip_average = flip and model.encoder is not None
    if len(models) == 1:
        return models[0].eval()
    net = EnsembleNet(EnsembleConfig(tuple(m.config for m in models)))
    for slot, model in zip(net.members, models):
        slot.load_state_dict(model.state_dict())
    return net.eval()
