"""Several training runs as one model file, or one run with mirrored-crop averaging.

The combined network (`train.ensemble.combine`) is a new model, so its numbers are its own: it is
scored again on the validation items the runs left (`val_features.npz`, the same items for runs of
one recipe), and its temperature is fitted again on the even-numbered items and checked on the
odd-numbered ones (`train.calibrate`), before the metadata says anything about it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from emoview.export.checkpoint import Run, load_val_crops, load_val_features
from emoview.realtime.errors import InputError
from emoview.realtime.files import sha256_of
from emoview.realtime.spec import FeatureSpec


def combine_runs(runs: list[Run], flip: list[int] | None = None) -> Run:
    """`flip`: the runs (numbered from 1) whose crops are averaged with their mirror images; [] all."""
    from emoview.train import calibrate
    from emoview.train.ensemble import EnsembleNet, combine
    from emoview.train.evaluate import scores

    first = runs[0]
    if flip is not None and not first.spec.crop:
        raise InputError("--flip is for models that look at the face crop; this run's model reads landmarks only")
    if flip and not all(1 <= n <= len(runs) for n in flip):
        raise InputError(f"--flip {' '.join(map(str, flip))}: runs are numbered 1 to {len(runs)} in the order given")
    flipped = [flip is not None and (not flip or n in flip) for n in range(1, len(runs) + 1)]
    for run in runs[1:]:
        if _reading(run.spec) != _reading(first.spec):
            raise InputError(f"{run.checkpoint} and {first.checkpoint} read faces differently (their feature specs differ); "
                             "combine runs of the same recipe family")
    _check_holdouts(runs)
    windows, crops, labels = _shared_val(runs)
    model = combine([run.model for run in runs], flipped)
    spec = replace(first.spec, embedding=model.config.embedding if first.spec.crop else 0)
    probs = _predict(model, windows, crops)
    calibration = calibrate.calibrate(probs, labels)
    model.config.temperature *= calibration["temperature"]
    calibration["temperature"] = round(model.config.temperature, 4)
    names = list(spec.labels)
    val = scores(labels, calibrate.rescale(probs, calibration["temperature"]).argmax(1), names)
    missed = first.rest.get("data_summary", {}).get("val", {}).get("faces_not_found")
    members = [{"checkpoint": str(run.checkpoint), "sha256": sha256_of(run.checkpoint),
                "val_accuracy": (run.rest.get("metrics") or {}).get("val_accuracy")} for run in runs]
    kind = f"mean of {len(runs)} networks" if isinstance(model, EnsembleNet) else "one network"
    recipes = [run.rest.get("recipe") or {} for run in runs]
    recipe = recipes[0] if len(runs) == 1 else {
        "name": "+".join(r.get("name", "?") for r in recipes),
        "description": f"{kind}: " + "; ".join(r.get("description", "?") for r in recipes),
        "members": recipes,
    }
    if any(flipped):
        which = "each" if all(flipped) else f"run {', '.join(str(n) for n, f in enumerate(flipped, 1) if f)}'s"
        recipe = {**recipe, "description": f"{recipe.get('description', '')}; {which} crops averaged with their mirror images"}
    epoch = first.rest.get("epoch") if len(runs) == 1 else [run.rest.get("epoch") for run in runs]
    rest = {**first.rest, "recipe": recipe, "members": members, "epoch": epoch,
            "metrics": {"val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"], "val_frames": 1,
                        "val": val, "calibration": calibration,
                        "note": f"scored on the {len(labels)} validation faces found; {missed or 0} not found are left out"}}
    return Run(first.checkpoint, model, spec, rest, members=[run.checkpoint for run in runs])


def _reading(spec: FeatureSpec) -> dict:
    """What a spec says about reading a face, leaving out the length of a model's own embedding."""
    data = json.loads(spec.to_json())
    data.pop("embedding", None)
    return data


def _holdouts(run: Run) -> dict:
    sources = (run.rest.get("data_summary") or {}).get("sources") or {}
    return {name: info["holdout_subjects"] for name, info in sources.items() if "holdout_subjects" in info}


def _check_holdouts(runs: list[Run]) -> None:
    """A subject one run held out but another trained on would make the combined model's hold-out
    score a score on faces it has seen."""
    for run in runs[1:]:
        if _holdouts(run) != _holdouts(runs[0]):
            raise InputError(f"{run.folder} held out other subjects than {runs[0].folder}; train the runs with one "
                             "train.split_seed (e.g. --seed 1 --set train.split_seed=0)")


def _shared_val(runs: list[Run]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The validation items every run left, which must be the same items."""
    found = []
    for run in runs:
        val = load_val_crops(run) if run.spec.crop else load_val_features(run)
        if val is None:
            raise InputError(f"{run.folder} has no val_features.npz to score and calibrate the combined model on; "
                             "pass run folders written by `emoview train`")
        found.append((val.windows, val.crops, val.labels) if run.spec.crop else (val[0], None, val[1]))
    windows, crops, labels = found[0]
    for run, (w, c, y) in zip(runs[1:], found[1:]):
        if w.shape != windows.shape or not np.array_equal(y, labels) or (c is None) != (crops is None) or (
                c is not None and not np.array_equal(c, crops)):
            raise InputError(f"{run.folder} was validated on other items than {runs[0].folder}; combine runs of one recipe's data")
    return windows, crops, labels


def _predict(model, windows: np.ndarray, crops: np.ndarray | None, batch: int = 512) -> np.ndarray:
    from emoview.train.evaluate import forward

    model.eval()
    return np.concatenate([forward(model, windows[i : i + batch], None if crops is None else crops[i : i + batch])
                           for i in range(0, len(windows), batch)])
