"""`emoview predict` and `emoview eval` on real images: JSON schema, skipping, scoring, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.commands.cli import main
from emoview.realtime.commands.predict import canonical, score

from conftest import FER_LABELS, REPO



def fer_val(shared: Path, label: str, count: int) -> list[Path]:
    return sorted((shared / "data" / "fer2013" / "val" / label).iterdir())[:count]


def ckplus(shared: Path, label: str, count: int) -> list[Path]:
    return sorted((shared / "data" / "ckplus48" / label).iterdir())[:count]


def blank_image(path: Path) -> Path:
    cv2.imwrite(str(path), np.full((96, 96, 3), 127, np.uint8))
    return path


def model_args(random_model: Path, face_model: Path) -> list[str]:
    return ["--model", str(random_model), "--face-model", str(face_model)]


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("emoview: error:")
    return lines[0]


@pytest.fixture
def image_folder(tmp_path, shared) -> Path:
    """A folder as a user has it: crops in a subfolder, a blank image, a stray text file."""
    folder = tmp_path / "images"
    (folder / "crops").mkdir(parents=True)
    for source in fer_val(shared, "happy", 2) + fer_val(shared, "surprise", 1):
        shutil.copy(source, folder / "crops" / source.name)
    blank_image(folder / "blank.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_predict_json_schema_on_real_images(image_folder, samples, random_model, face_model, tmp_path, capsys):
    out = tmp_path / "out.json"
    single, multi = samples / "single_face.jpg", samples / "multi_face.jpg"
    argv = ["predict", str(single), str(image_folder), str(multi), "--json", str(out)]
    assert main(argv + model_args(random_model, face_model)) == 0
    assert "skipped 1 unreadable" in capsys.readouterr().err

    payload = json.loads(out.read_text())
    assert set(payload) == {"model", "items"}
    model = EmotionClassifier(random_model)
    assert payload["model"] == {  # which model answered, not its whole card
        "path": str(random_model), "labels": list(FER_LABELS), "window": 15, "created": None, "emoview_version": None,
        "weights_sha256": model.metadata["emoview.weights_sha256"],
    }
    crops = sorted((image_folder / "crops").iterdir())
    expected_paths = [str(single), str(image_folder / "blank.png"), *map(str, crops), str(multi)]
    assert [item["path"] for item in payload["items"]] == expected_paths  # input order, folders sorted
    for item in payload["items"]:
        assert set(item) == {"path", "face", "label", "probabilities", "faces"}
        assert item["face"] == bool(item["faces"])
        for face in item["faces"]:
            probs = face["probabilities"]
            assert list(probs) == list(FER_LABELS)
            assert abs(sum(probs.values()) - 1) < 1e-4
            assert face["label"] == max(probs, key=probs.get)
            x0, y0, x1, y1 = face["box"]
            assert 0 <= x0 < x1 and 0 <= y0 < y1
        if item["face"]:  # the top level describes the largest face
            largest = max(item["faces"], key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
            assert (item["label"], item["probabilities"]) == (largest["label"], largest["probabilities"])
        else:
            assert item["label"] is None and item["probabilities"] is None
    faces = {Path(item["path"]).name: item["face"] for item in payload["items"]}
    assert faces.pop("blank.png") is False
    assert all(faces.values()), faces  # the photos and every FER crop


def test_predict_prints_a_table_without_json(samples, random_model, face_model, capsys):
    assert main(["predict", str(samples / "single_face.jpg")] + model_args(random_model, face_model)) == 0
    out = capsys.readouterr().out
    assert "single_face.jpg" in out and any(label in out for label in FER_LABELS)


def test_predict_json_to_stdout_in_a_subprocess_is_pure_json(samples, random_model, face_model):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "emoview", "predict", str(samples / "single_face.jpg"), "--json", "-"]
    done = subprocess.run(argv + model_args(random_model, face_model), cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    assert [item["face"] for item in items] == [True]
    lines = done.stdout.splitlines()
    assert any('"items"' in line for line in lines[:25]), done.stdout  # the results come first, not the model card


def test_predict_missing_path_is_one_line(tmp_path, random_model, face_model, capsys):
    assert main(["predict", str(tmp_path / "nope.jpg")] + model_args(random_model, face_model)) == 2
    assert "does not exist" in one_error_line(capsys)


def test_predict_only_unreadable_files_is_one_line(tmp_path, random_model, face_model, capsys):
    (tmp_path / "a.txt").write_text("text")
    assert main(["predict", str(tmp_path)] + model_args(random_model, face_model)) == 2
    assert "no readable images" in capsys.readouterr().err


@pytest.fixture
def eval_folder(tmp_path, shared) -> Path:
    """Mixed spellings on purpose: 'Happiness' and CK+'s 'anger'; 'contempt' is not a model class."""
    root = tmp_path / "dataset"
    layout = {
        "Happiness": fer_val(shared, "happy", 2),
        "anger": ckplus(shared, "anger", 2),
        "sad": fer_val(shared, "sad", 2),
        "contempt": ckplus(shared, "contempt", 2),
    }
    for folder, files in layout.items():
        (root / folder).mkdir(parents=True)
        for source in files:
            shutil.copy(source, root / folder / source.name)
    blank_image(root / "sad" / "zz_blank.png")  # no face: must count as wrong
    return root


def test_eval_on_a_tiny_folder(eval_folder, random_model, face_model, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", str(eval_folder), "--json", str(out)] + model_args(random_model, face_model)) == 0
    captured = capsys.readouterr()
    assert "skipped folder contempt/ (2 files)" in captured.err
    assert "accuracy" in captured.out and "macro-F1" in captured.out and "confusion matrix" in captured.out

    result = json.loads(out.read_text())
    assert result["images"] == 7 and result["faces_found"] == 6
    assert list(result["skipped_folders"]) == ["contempt"]
    assert sorted(result["per_class"]) == ["angry", "happy", "sad"]
    assert {k: v["support"] for k, v in result["per_class"].items()} == {"angry": 2, "happy": 2, "sad": 3}
    matrix = np.array(result["confusion"]["matrix"])
    assert result["confusion"]["columns"][-1] == "no face"
    assert matrix.sum() == 7 and matrix[FER_LABELS.index("sad"), -1] == 1
    items = result["items"]
    blank = [item for item in items if item["path"].endswith("zz_blank.png")]
    assert blank == [{"path": str(eval_folder / "sad" / "zz_blank.png"), "true": "sad", "face": False, "label": None,
                      "probabilities": None}]
    correct = sum(item["label"] == item["true"] for item in items)
    assert result["accuracy"] == pytest.approx(correct / 7)


def test_scores_match_a_hand_count():
    labels = ("angry", "happy", "sad", "neutral")
    truth = np.array([0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, -1, 3, 2])  # -1: no face
    scores = score(truth, predicted, labels)
    assert scores.accuracy == pytest.approx(4 / 7)
    assert scores.classes == ["angry", "happy", "sad"]  # neutral is predicted but has no images
    assert scores.per_class["angry"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert scores.per_class["happy"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert scores.per_class["sad"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert scores.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert scores.confusion[1].tolist() == [0, 1, 0, 0, 1]


def test_class_names_match_case_insensitively_with_synonyms():
    pairs = [("Anger", "angry"), ("HAPPINESS", "happy"), ("sadness", "sad"), ("Surprised", "surprise"),
             ("fearful", "fear"), ("Disgusted", "disgust"), ("neutral", "neutral")]  # fmt: skip
    assert [canonical(name) for name, _ in pairs] == [expected for _, expected in pairs]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "no class folders this model knows"),
        (lambda root: (root / "contempt").mkdir(parents=True), "no class folders this model knows"),
        (lambda root: (root / "happy").mkdir(parents=True), "hold no files"),
    ],
)
def test_eval_dataset_errors_are_one_line(tmp_path, random_model, face_model, capsys, build, message):
    root = tmp_path / "data"
    build(root)
    assert main(["eval", str(root)] + model_args(random_model, face_model)) == 2
    assert message in one_error_line(capsys)


def test_eval_on_chosen_subjects_only(tmp_path, shared, random_model, face_model, capsys):
    root = tmp_path / "ck"
    picks = {  # first and last files: different people
        "anger": ckplus(shared, "anger", 3),
        "surprise": sorted((shared / "data" / "ckplus48" / "surprise").iterdir())[-3:],
        "contempt": ckplus(shared, "contempt", 3),
    }
    for folder, sources in picks.items():
        (root / folder).mkdir(parents=True)
        for source in sources:
            shutil.copy(source, root / folder / source.name)
    files = sorted(p.name for p in root.rglob("*.png") if p.parent.name != "contempt")
    subject = files[0].split("_")[0]
    expected = sum(name.startswith(subject + "_") for name in files)
    out = tmp_path / "eval.json"
    argv = ["eval", str(root), "--subjects", f"{subject}, S999", "--json", str(out)]
    assert main(argv + model_args(random_model, face_model)) == 0
    result = json.loads(out.read_text())
    assert result["images"] == expected and expected < len(files)
    assert all(Path(item["path"]).name.startswith(subject + "_") for item in result["items"])
    assert main(["eval", str(root), "--subjects", "S999"] + model_args(random_model, face_model)) == 2
    assert "no images" in capsys.readouterr().err.strip().splitlines()[-1]


def test_predict_lists_every_face_of_a_group_photo_that_images_draws(samples, random_model, face_model, tmp_path):
    """`emoview --images` and `emoview predict` find the same faces: every one drawn is listed, boxed."""
    import argparse
    import contextlib

    from emoview.realtime.commands import live
    from emoview.realtime.session import Session
    from emoview.realtime.sources import ImageFolderSource

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(samples / "multi_face.jpg", folder)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "emoview", "predict", str(folder / "multi_face.jpg"), "--json", "-"]
    done = subprocess.run(argv + model_args(random_model, face_model), cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = [tuple(face["box"]) for face in json.loads(done.stdout)["items"][0]["faces"]]

    parser = argparse.ArgumentParser()
    live.configure(parser)
    args = parser.parse_args(["--images", str(folder), "--no-display"] + model_args(random_model, face_model))
    drawn = []
    with contextlib.ExitStack() as stack:
        analyzer = live.open_analyzer(args, stack, stills=True)
        source = stack.enter_context(ImageFolderSource(folder))
        Session(source, analyzer, on_result=lambda r: drawn.extend(face.box for face in r.faces)).run()
    assert len(drawn) == 5  # all five people: the tiled search, in predict and --images alike
    assert sorted(drawn) == sorted(listed)


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "high"])
def test_min_confidence_is_validated(value, samples, random_model, face_model, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(samples / "single_face.jpg"), "--min-confidence", value] + model_args(random_model, face_model))
    assert exit_.value.code == 2
    assert "--min-confidence" in capsys.readouterr().err


def test_min_confidence_changes_what_is_found(samples, random_model, face_model, tmp_path):
    out = tmp_path / "out.json"
    photo = str(samples / "multi_face.jpg")
    assert main(["predict", photo, "--min-confidence", "1", "--json", str(out)] + model_args(random_model, face_model)) == 0
    assert json.loads(out.read_text())["items"][0]["faces"] == []


def test_predict_csv_has_one_row_per_face(samples, random_model, face_model, tmp_path):
    out, table = tmp_path / "out.json", tmp_path / "faces.csv"
    argv = ["predict", str(samples / "multi_face.jpg"), str(samples / "single_face.jpg"), "--json", str(out), "--csv", str(table)]
    assert main(argv + model_args(random_model, face_model)) == 0
    import csv

    rows = list(csv.DictReader(table.open()))
    items = json.loads(out.read_text())["items"]
    expected = [(item["path"], face) for item in items for face in item["faces"]]
    assert len(rows) == len(expected) >= 3
    for row, (path, face) in zip(rows, expected):
        assert row["path"] == path and row["label"] == face["label"]
        assert [int(row[k]) for k in ("x0", "y0", "x1", "y1")] == face["box"]
        assert float(row["p_happy"]) == pytest.approx(face["probabilities"]["happy"], abs=1e-5)
