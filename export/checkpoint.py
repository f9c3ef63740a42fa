"""Reading a training run folder: the best checkpoint and, when training left one, its validation features.

A run folder holds `best.pt`, written by training as
`{"model_config", "state_dict", "spec", "metrics", "data_summary", "recipe", "epoch"}`.
When the training package provides `train.checkpoint.load_run`, it is used so both sides read the
format the same way; the checks here still give the user one clear line for the common mistakes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from realtime.errors import EmoviewError, InputError
from realtime.spec import FeatureSpec, SpecError
from train.model import EmotionNet, ModelConfig

CHECKPOINT_NAME = "best.pt"
REQUIRED_KEYS = ("model_config", "state_dict", "spec")
# Validation feature sets a run may leave, first found wins: arrays of windows and their labels.
VAL_FILES = ("val_features.npz", "val.npz")
VAL_WINDOW_KEYS = ("windows", "features", "X", "x")
VAL_LABEL_KEYS = ("labels", "y", "targets")


@dataclass
class Run:
    """A trained network ready to export, with what the model's metadata should say about it."""

    checkpoint: Path
    model: EmotionNet
    spec: FeatureSpec
    rest: dict = field(default_factory=dict)  # metrics, data_summary, recipe, epoch, ...

    @property
    def folder(self) -> Path:
        return self.checkpoint.parent


def find_checkpoint(run: str | os.PathLike) -> Path:
    """RUN may be a run folder (its best.pt is used) or a checkpoint file itself."""
    path = Path(run)
    if not path.exists():
        raise InputError(f"run {path} does not exist; pass a training run folder containing {CHECKPOINT_NAME}")
    if path.is_dir():
        path = path / CHECKPOINT_NAME
        if not path.is_file():
            raise InputError(f"no checkpoint {CHECKPOINT_NAME} in {path.parent}; train first or pass the run folder that has it")
    return path


def load_run(run: str | os.PathLike) -> Run:
    """The network (eval mode), its feature spec and the rest of the checkpoint."""
    checkpoint = find_checkpoint(run)
    try:
        from train.checkpoint import load_run as train_load_run
    except ImportError:
        train_load_run = None
    if train_load_run is not None and checkpoint.name == CHECKPOINT_NAME:
        try:
            model, spec, rest = train_load_run(checkpoint.parent)
        except EmoviewError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to read is the user's file, in one line
            raise InputError(f"cannot load {checkpoint} ({_first_line(exc)}); re-run training or pass another run") from None
        return Run(checkpoint, model.eval(), spec, dict(rest))
    return _load_checkpoint(checkpoint)


def _load_checkpoint(checkpoint: Path) -> Run:
    try:
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors all mean "not a checkpoint"
        raise InputError(f"{checkpoint} is not a readable checkpoint ({_first_line(exc)}); re-run training or pass another run") from None
    if not isinstance(data, dict) or any(key not in data for key in REQUIRED_KEYS):
        have = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{checkpoint} is not an emoview checkpoint (needs {list(REQUIRED_KEYS)}, has {have}); pass a run made by `emoview train`")
    try:
        spec = FeatureSpec.from_json(data["spec"])
        config = ModelConfig.from_dict(data["model_config"])
        model = EmotionNet(config)
        model.load_state_dict(data["state_dict"])
    except (SpecError, TypeError, KeyError, ValueError, RuntimeError) as exc:
        raise InputError(f"{checkpoint} does not describe a usable network ({_first_line(exc)}); re-run training") from None
    if config.features != spec.feature_size or config.classes != len(spec.labels):
        raise InputError(
            f"{checkpoint}: network takes {config.features} features / {config.classes} classes but its spec "
            f"says {spec.feature_size} / {len(spec.labels)}; re-run training"
        )
    rest = {k: v for k, v in data.items() if k not in ("state_dict", "spec")}
    return Run(checkpoint, model.eval(), spec, rest)


def load_val_features(run: Run) -> tuple[np.ndarray, np.ndarray, Path] | None:
    """Validation windows (N, T, F) float32 and label indices (N,) if the run folder has them."""
    for name in VAL_FILES:
        path = run.folder / name
        if path.is_file():
            break
    else:
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            windows = next((arrays[k] for k in VAL_WINDOW_KEYS if k in arrays), None)
            labels = next((arrays[k] for k in VAL_LABEL_KEYS if k in arrays), None)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path} is not a readable feature set ({_first_line(exc)}); remove it or re-run training") from None
    if windows is None or labels is None:
        raise InputError(f"{path} needs arrays {VAL_WINDOW_KEYS[0]!r} and {VAL_LABEL_KEYS[0]!r}; remove it or re-run training")
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim == 2:
        windows = windows[:, None, :]  # one frame per sample, as images are classified
    if windows.ndim != 3 or windows.shape[2] != run.spec.feature_size or len(windows) != len(labels):
        raise InputError(f"{path}: windows {windows.shape} and labels {np.shape(labels)} do not fit the spec's {run.spec.feature_size} features")
    if labels.dtype.kind in "US":
        index = {name: i for i, name in enumerate(run.spec.labels)}
        labels = np.array([index.get(str(name), -1) for name in labels])
    return windows, np.asarray(labels, dtype=np.int64), path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
