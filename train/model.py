"""The network: per-frame 1D convolutions over time, a bidirectional LSTM, then a classifier.

Input is a batch of feature windows (batch, time, features); output is class probabilities. The
convolutions are "same"-padded, so any window length T >= 1 works, which is what lets the runtime
classify a face from its first frame while its window is still filling.

A fused model (`crop` > 0) also looks at the face: a small CNN (`CropEncoder`) turns each frame's
aligned grey crop into an embedding, which joins that frame's landmark features before the
temporal layers. The encoder runs once per frame: at run time the model gets the new frame's crop
and the embeddings it returned for the window's earlier frames (`step`), so a 15-frame window
costs one encoder pass, not fifteen.
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
    crop: int = 0  # side of the aligned face crop (0: landmarks only)
    embedding: int = 0  # crop embedding per frame
    encoder_channels: tuple[int, ...] = (32, 64, 128, 192)  # CropEncoder stages
    temperature: float = 1.0  # calibration: probabilities are softmax(logits / temperature)
    # at inference, a crop's embedding is the mean of the crop's and its mirror image's (one encoder
    # call on both): the encoder was trained on mirrored faces too, and a face's two halves then
    # both count (FER2013 val, FER+ labels: +0.3 to +0.4 points of accuracy, 2x the encoder's time)
    flip_average: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        data = dict(data)
        data["conv_channels"] = tuple(data["conv_channels"])
        if "encoder_channels" in data:
            data["encoder_channels"] = tuple(data["encoder_channels"])
        return cls(**data)


class CropEncoder(nn.Module):
    """Aligned grey face crop (B, 1, N, N), values 0..1, to an embedding (B, E).

    Light is normalised first, per crop (zero mean, unit spread), so a dim room and a bright one
    look alike. Then one full-resolution convolution, three stages of two 3x3 conv-BN-ReLU at
    halving resolutions, global average pooling and a projection. One conv (not two) at full
    resolution: it is where a plain VGG-style CNN spends a fifth of its multiply-adds for little.
    """

    def __init__(self, channels: tuple[int, ...], embedding: int, dropout: float) -> None:
        super().__init__()

        def conv(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]

        layers = conv(1, channels[0]) + [nn.MaxPool2d(2)]
        for i in range(1, len(channels)):
            layers += conv(channels[i - 1], channels[i]) + conv(channels[i], channels[i])
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels[-1], embedding), nn.BatchNorm1d(embedding))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        mean = crops.mean(dim=(2, 3), keepdim=True)
        std = crops.std(dim=(2, 3), keepdim=True).clamp_min(0.02)
        x = self.body((crops - mean) / std)
        return self.project(x.mean(dim=(2, 3)))


class ConvBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, kernel: int, dropout: float, padding: str = "zeros") -> None:
        super().__init__()
        self.conv = nn.Conv1d(inputs, outputs, kernel, padding=kernel // 2, padding_mode=padding)
        self.norm = nn.BatchNorm1d(outputs)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, channels: slice | None = None) -> torch.Tensor:
        """`channels`: x holds only those of the block's input channels (the others would be zeros)."""
        y = self.conv(x) if channels is None else self.conv._conv_forward(x, self.conv.weight[:, channels], self.conv.bias)
        return self.drop(self.act(self.norm(y)))


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
        self.encoder = CropEncoder(config.encoder_channels, config.embedding, config.dropout) if config.crop else None
        width = config.features + (config.embedding if config.crop else 0)
        self.conv = nn.Sequential(
            ConvBlock(width, c1, config.first_kernel or config.kernel, config.dropout, config.padding),
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

    def _crop_only(self) -> bool:
        """At inference, a network trained on the crop alone (`inputs = "crop"`: every landmark
        feature scaled to exactly zero) skips the landmarks: in an ensemble beside a fused network,
        that is 1,486 of its first layer's 1,614 inputs per frame it no longer multiplies."""
        if self.training or self.encoder is None or isinstance(self.input_norm, nn.LayerNorm):
            return False
        return not bool(self.input_scale.any() or self.input_shift.any())

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, E) embeddings of (B, N, N) or (B, 1, N, N) crops."""
        crops = crops if crops.dim() == 4 else crops[:, None]
        if self.training or not self.config.flip_average:
            return self.encoder(crops)
        both = self.encoder(torch.cat([crops, crops.flip(3)]))
        return (both[: crops.shape[0]] + both[crops.shape[0] :]) * 0.5

    def logits(self, x: torch.Tensor, crops: torch.Tensor | None = None, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, F) landmark features. A fused model also takes either `crops` (B, N, N): one
        still per window, its embedding repeated over the window (training on stills), or
        `embeddings` (B, T, E): one per frame, already computed."""
        if self.encoder is not None and embeddings is None:
            embeddings = self.embed(crops)[:, None, :].expand(-1, x.shape[1], -1)
        if self._crop_only():  # the first layer's landmark weights would only multiply zeros
            x = self.conv[0](embeddings.transpose(1, 2), channels=slice(self.config.features, None))
        else:
            x = x * self.input_scale + self.input_shift
            x = self.input_drop(self.input_norm(x))  # (B, T, F)
            if self.encoder is not None:
                x = torch.cat([x, embeddings.to(x.dtype)], dim=2)
            x = self.conv[0](x.transpose(1, 2))
        x = self.conv[1](x).transpose(1, 2)  # (B, T, C)
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

    def forward(self, x: torch.Tensor, crops: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(self.logits(x, crops) / self.config.temperature, dim=-1)

    def step(self, x: torch.Tensor, crop: torch.Tensor, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the exported fused model computes for one new frame per face: x (B, T, F) the
        window's features, crop (B, 1, N, N) the newest frame's crop, embeddings (B, T, E) the
        earlier frames' embeddings (the last row, the newest frame's, is ignored). Returns the
        probabilities and the new frame's embedding, which the caller keeps for the next windows."""
        new = self.embed(crop)
        sequence = torch.cat([embeddings[:, :-1], new[:, None, :]], dim=1)
        return torch.softmax(self.logits(x, embeddings=sequence) / self.config.temperature, dim=-1), new


class FusedStep(nn.Module):
    """`EmotionNet.step` as a module's forward, for the ONNX exporter."""

    def __init__(self, net: EmotionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, crop: torch.Tensor, embeddings: torch.Tensor):
        return self.net.step(x, crop, embeddings)
