"""Checkpoints: the format the exporter relies on, atomic saves, and `load_run` for a run folder.

    {"model_config": ModelConfig.to_dict() (an ensemble's: `train.ensemble`), "state_dict": ..., "spec": FeatureSpec.to_json(),
     "metrics": {...val metrics...}, "data_summary": {...}, "recipe": {...}, "epoch": int}

`last.pt` adds the optimizer, scheduler, RNG states and history, so an interrupted run resumes
where it stopped. Saves go to a temporary file that is then renamed: a run killed mid-save keeps
its previous checkpoint instead of a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from emoview.realtime.errors import InputError
from emoview.realtime.spec import FeatureSpec
from emoview.train.ensemble import EnsembleNet, network
from emoview.train.model import EmotionNet

BEST, LAST = "best.pt", "last.pt"


def save(payload: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise InputError(f"{path} is not a readable checkpoint ({exc}); train again") from None


def model_from(payload: dict) -> EmotionNet | EnsembleNet:
    model = network(payload["model_config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def load_run(run_dir: str | os.PathLike) -> tuple[EmotionNet | EnsembleNet, FeatureSpec, dict]:
    """(network in eval mode, its feature spec, everything else in best.pt) from a run folder."""
    path = Path(run_dir)
    path = path if path.suffix == ".pt" else path / BEST
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}; pass a run folder written by `emoview train`")
    payload = load(path)
    rest = {k: v for k, v in payload.items() if k not in ("state_dict", "spec")}
    return model_from(payload), FeatureSpec.from_json(payload["spec"]), rest
