"""End to end: real images -> extraction -> training -> run folder, resuming, and the sequence path."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emoview.realtime.commands.cli import main
from emoview.train import trainer
from emoview.train.checkpoint import load_run

SMALL = ["--set", "model.conv_channels=[16, 32]", "--set", "model.lstm_hidden=16", "--set", "train.batch_size=32"]
CKPLUS_RECIPE = (Path(__file__).parent / "data" / "tiny_ckplus.toml").read_text()


def _train(tmp_path, recipe: str, out, *extra) -> int:
    path = tmp_path / "recipe.toml"
    path.write_text(recipe)
    return main(["train", str(path), "--out", str(out), "--cache", str(tmp_path / "cache"), *SMALL, *extra])


def _held_out(tmp_path, shared, face_model, **train) -> list[str]:
    """The CK+ subjects the tiny recipe holds out with these [train] settings (features cached by `_train`)."""
    from emoview.train.config import load_recipe, recipe_from_dict
    from emoview.train.data import build_splits

    data = load_recipe(str(tmp_path / "recipe.toml")).to_dict()
    data["train"].update(train)
    splits = build_splits(recipe_from_dict(data), shared / "data", tmp_path / "cache", face_model, 300)
    return splits.summary["sources"]["ckplus"]["holdout_subjects"]


def test_ckplus_happy_vs_surprise_end_to_end(tmp_path, shared, face_model, monkeypatch):
    monkeypatch.setenv("EMOVIEW_FACE_MODEL", str(face_model))
    out = tmp_path / "run"
    assert _train(tmp_path, CKPLUS_RECIPE, out, "--data", str(shared / "data"), "--limit", "300") == 0
    for name in ("best.pt", "last.pt", "metrics.json", "history.json", "config.json", "data_summary.json",
                 "confusion_val.png", "curves.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val"]["macro_f1"] > 0.75  # chance is 0.5; these two expressions are easy to tell apart
    assert set(metrics["val"]["per_class"]) == {"happy", "surprise"}
    summary = json.loads((out / "data_summary.json").read_text())
    held = set(summary["sources"]["ckplus"]["holdout_subjects"])
    assert held and summary["val"]["items"] > 0
    # runs to be averaged into one model differ in seed and hold out the same subjects
    assert _held_out(tmp_path, shared, face_model, seed=5, split_seed=0) == sorted(held)
    assert _held_out(tmp_path, shared, face_model, seed=5) != sorted(held)
    model, spec, rest = load_run(out)
    assert not model.training and spec.labels == ("happy", "surprise") and spec.window == 5
    assert {"model_config", "metrics", "data_summary", "recipe", "epoch"} <= set(rest)
    payload = torch.load(out / "best.pt", weights_only=False)
    assert {"model_config", "state_dict", "spec", "metrics", "data_summary", "recipe", "epoch"} <= set(payload)
    probs = model(torch.zeros(1, 15, spec.feature_size))
    assert probs.shape == (1, 2)
    # a finished run is not overwritten by accident
    assert _train(tmp_path, CKPLUS_RECIPE, out, "--data", str(shared / "data"), "--limit", "300") == 2


def test_interrupted_run_resumes_from_last_checkpoint(tmp_path, shared, face_model, monkeypatch):
    monkeypatch.setenv("EMOVIEW_FACE_MODEL", str(face_model))
    out = tmp_path / "run"
    real = trainer._validate
    calls = {"n": 0}

    def interrupt_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_validate", interrupt_in_epoch_two)
    assert _train(tmp_path, CKPLUS_RECIPE, out, "--data", str(shared / "data"), "--limit", "120") == 130
    assert torch.load(out / "last.pt", weights_only=False)["epoch"] == 1
    monkeypatch.setattr(trainer, "_validate", real)
    assert _train(tmp_path, CKPLUS_RECIPE, out, "--data", str(shared / "data"), "--limit", "120") == 0
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    # a different configuration in the same folder is refused, not mixed in
    last = torch.load(out / "last.pt", weights_only=False)
    last["finished"] = False
    torch.save(last, out / "last.pt")
    assert _train(tmp_path, CKPLUS_RECIPE, out, "--data", str(shared / "data"), "--limit", "120", "--seed", "7") == 2


def _ravdess_copy(shared, folder, actor: int, emotion: int, mouth: float) -> None:
    """The real fixture under another RAVDESS name; `mouth` opens the jaw (in pixels) for one class."""
    src = shared / "data" / "ravdess" / "01-01-03-02-01-01-01.first60frames.csv"
    with open(src, newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    lower = {header.index(f"y_{k}") for k in (6, 7, 8, 9, 10, 55, 56, 57, 58, 59, 65, 66, 67)}
    for row in rows[1:]:
        for c in lower:
            row[c] = str(float(row[c]) + mouth)
    name = folder / f"01-01-{emotion:02d}-01-01-01-{actor:02d}.csv"
    with open(name, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)


def test_ravdess_recipe_on_separable_sequences(tmp_path, shared):
    data = tmp_path / "data" / "ravdess"
    data.mkdir(parents=True)
    for actor in range(1, 7):
        _ravdess_copy(shared, data, actor, 3, 0.0)  # happy: the real track
        _ravdess_copy(shared, data, actor, 8, 25.0)  # surprise: the same track, mouth wide open
    out = tmp_path / "run"
    extra = ["--data", str(tmp_path / "data"), "--epochs", "6", "--set", "spec.window=30", "--set", "train.stride=10",
             "--set", 'labels=["happy", "surprise"]', "--set", "train.lr=3e-3", "--set", "train.batch_size=8"]
    assert _train(tmp_path, _recipe_text("ravdess"), out, *extra) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    summary = json.loads((out / "data_summary.json").read_text())
    assert summary["sources"]["ravdess"]["subjects"] == 6 and len(summary["sources"]["ravdess"]["holdout_subjects"]) == 1
    assert metrics["val"]["items"] == 8  # 2 files x 4 windows of 30 frames (stride 10) for the held-out actor
    assert metrics["val"]["accuracy"] > 0.8  # chance is 0.5


def _recipe_text(name: str) -> str:
    from emoview.train.config import RECIPES

    return (RECIPES / f"{name}.toml").read_text()


def test_afewva_recipe_needs_two_subjects(shared, capsys):
    assert main(["train", "afewva", "--data", str(shared / "data"), "--out", "/nonexistent/never"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least 2 subjects" in err[0]


def test_missing_data_is_one_line(tmp_path, capsys):
    assert main(["train", "fer2013", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert main(["train", "nosuchrecipe"]) == 2
    assert "built-in recipes" in capsys.readouterr().err


@pytest.mark.parametrize("settings, message", [
    (['train.mix="mixp"'], "[train] mix must be one of '', 'mixup', 'cutmix', not 'mixp'"),
    (['train.autocast="fp16"'], "[train] autocast must be one of '', 'bf16', not 'fp16'"),
    (['train.inputs="crops"'], "[train] inputs must be one of 'both', 'landmarks', 'blendshapes', 'crop', not 'crops'"),
    (['train.mix="mixup"', "train.mix_alpha=0"], "[train] mix_alpha must be above 0 with mix = 'mixup', not 0"),
])
def test_a_bad_choice_is_refused_before_any_data_is_read(tmp_path, capsys, settings, message):
    # the data folder does not exist: the setting is refused first, not after minutes of loading
    args = ["train", "fer2013", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")]
    assert main(args + [a for setting in settings for a in ("--set", setting)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "run").exists()


def test_recipes_parse_and_match_the_seeds():
    from emoview.train.config import available, load_recipe, spec_of

    assert {"fer2013", "ckplus", "ravdess", "afewva"} <= set(available())
    ravdess, afewva = spec_of(load_recipe("ravdess")), spec_of(load_recipe("afewva"))
    assert (ravdess.layout, ravdess.dims, ravdess.window, len(ravdess.labels)) == ("ibug68", 2, 90, 7)
    assert (afewva.window, afewva.labels) == (15, ("Anger", "Happy", "Shock", "Neutral", "Sad"))
    assert np.isclose(load_recipe("fer2013_landmarks").train.label_smoothing, 0.1)
    shipped = load_recipe("fer2013")  # the fused model: FER+ votes as soft targets, scored on the FER+ plurality
    assert spec_of(shipped).crop == 48 and [s.labels for s in shipped.sources][:2] == ["votes", "plurality"]
