"""The network: per-frame 1D convolutions over time, a bidirectional LSTM, then a classifier.

Input is a batch of feature windows (batch, time, features); output is class probabilities. The
convolutions are "same"-padded, so any window length T >= 1 works, which is what lets the runtime
classify a face from its first frame while its window is still filling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    features: int  # length of one frame's feature vector (FeatureSpec.feature_size)
    classes: int
    conv_channels: tuple[int, int] = (64, 128)  # the two conv blocks (seed B: 64 and 128 filters)
    kernel: int = 3
    first_kernel: int = 0  # kernel of the first block (0: `kernel`); 1 makes it a per-frame projection,
    # which buys a wider first block (more per-face capacity) for the same run-time cost
    lstm_hidden: int = 128  # per direction
    dropout: float = 0.3
    input_dropout: float = 0.1
    attention: bool = False  # attention pooling over time instead of the last hidden states
    layer_norm: bool = True  # LayerNorm over each frame's features after standardization
    # "replicate" pads a window with copies of its first/last frame instead of zeros: a face held
    # still then gives the same convolution output at T=1 as inside a long window, so one-frame
    # windows (`emoview predict`, the first frames live) and full windows agree
    padding: str = "zeros"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        data = dict(data)
        data["conv_channels"] = tuple(data["conv_channels"])
        return cls(**data)


class ConvBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, kernel: int, dropout: float, padding: str = "zeros") -> None:
        super().__init__()
        self.conv = nn.Conv1d(inputs, outputs, kernel, padding=kernel // 2, padding_mode=padding)
        self.norm = nn.BatchNorm1d(outputs)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.conv(x))))


class EmotionNet(nn.Module):
    """CNN-BiLSTM over landmark windows; `forward` returns probabilities, `logits` the raw scores."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.conv_channels
        # per-feature standardization learnt from the training set (`set_input_stats`); stored as
        # buffers, so it travels inside the checkpoint and the ONNX graph and the runtime can feed
        # the spec's raw features. A zero scale masks a feature out (input ablations).
        self.register_buffer("input_shift", torch.zeros(config.features))
        self.register_buffer("input_scale", torch.ones(config.features))
        self.input_norm = nn.LayerNorm(config.features) if config.layer_norm else nn.Identity()
        self.input_drop = nn.Dropout(config.input_dropout)
        self.conv = nn.Sequential(
            ConvBlock(config.features, c1, config.first_kernel or config.kernel, config.dropout, config.padding),
            ConvBlock(c1, c2, config.kernel, config.dropout, config.padding),
        )
        self.lstm = nn.LSTM(c2, config.lstm_hidden, batch_first=True, bidirectional=True)
        hidden = 2 * config.lstm_hidden
        self.attention = nn.Linear(hidden, 1) if config.attention else None
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(hidden, config.classes))

    def set_input_stats(self, mean, std, mask=None) -> None:
        """Standardize inputs as (x - mean) / std; features where `mask` is 0 are zeroed."""
        mean = torch.as_tensor(mean, dtype=torch.float32)
        scale = 1.0 / torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6)
        if mask is not None:
            scale = scale * torch.as_tensor(mask, dtype=torch.float32)
        self.input_scale.copy_(scale)
        self.input_shift.copy_(-mean * scale)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.input_scale + self.input_shift
        x = self.input_drop(self.input_norm(x))  # (B, T, F)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C)
        out, _ = self.lstm(x)  # (B, T, 2H)
        if self.attention is not None:
            weights = torch.softmax(self.attention(out), dim=1)  # (B, T, 1)
            pooled = (weights * out).sum(dim=1)
        else:
            half = self.config.lstm_hidden
            # forward direction's last step and backward direction's first step: both have seen
            # the whole window
            pooled = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        return self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)
