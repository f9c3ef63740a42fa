"""Reading a training run folder: the best checkpoint and, when training left one, its validation features.

A run folder holds `best.pt`, written by training as
`{"model_config", "state_dict", "spec", "metrics", "data_summary", "recipe", "epoch"}`.
Training's own `train.checkpoint.load_run` reads it, so both sides agree on the format; the checks
here turn every way a run folder can be wrong into one clear line for the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emoview.realtime.errors import EmoviewError, InputError
from emoview.realtime.spec import FeatureSpec, SpecError
from emoview.train.ensemble import EnsembleNet
from emoview.train.model import EmotionNet

CHECKPOINT_NAME = "best.pt"
# Validation feature sets a run may leave, first found wins: arrays of windows and their labels.
VAL_FILES = ("val_features.npz", "val.npz")
VAL_WINDOW_KEYS = ("windows", "features", "X", "x")
VAL_LABEL_KEYS = ("labels", "y", "targets")


@dataclass
class Run:
    """A trained network ready to export, with what the model's metadata should say about it."""

    checkpoint: Path
    model: EmotionNet | EnsembleNet
    spec: FeatureSpec
    rest: dict = field(default_factory=dict)  # metrics, data_summary, recipe, epoch, ...
    members: list[Path] = field(default_factory=list)  # the checkpoints of a combined model (`export.combine`)

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
    """The network (eval mode), its feature spec and the rest of the checkpoint, via training's loader."""
    from emoview.train.checkpoint import load_run as train_load_run

    checkpoint = find_checkpoint(run)
    try:
        model, spec, rest = train_load_run(checkpoint)
    except EmoviewError:
        raise
    except KeyError as exc:
        raise InputError(f"{checkpoint} is not an emoview checkpoint (no {exc} entry); pass a run made by `emoview train`") from None
    except (SpecError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{checkpoint} does not describe a usable network ({_first_line(exc)}); re-run training") from None
    except Exception as exc:  # noqa: BLE001 - unpickling errors of every kind: the file is not a checkpoint
        raise InputError(f"{checkpoint} is not a readable checkpoint ({_first_line(exc)}); re-run training or pass another run") from None
    config = model.config
    if config.features != spec.feature_size or config.classes != len(spec.labels):
        raise InputError(
            f"{checkpoint}: network takes {config.features} features / {config.classes} classes but its spec "
            f"says {spec.feature_size} / {len(spec.labels)}; re-run training"
        )
    return Run(checkpoint, model.eval(), spec, dict(rest))


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


def load_val_crops(run: Run):
    """A fused run's validation items with their face crops (`CropSet`), or None without crops."""
    from emoview.export.quantize import CropSet

    val = load_val_features(run)
    if val is None:
        return None
    windows, labels, path = val
    with np.load(path, allow_pickle=False) as arrays:
        if "crops" not in arrays:
            return None
        crops = np.asarray(arrays["crops"])
    keep = labels >= 0
    return CropSet(windows[keep], crops[keep], labels[keep], str(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
