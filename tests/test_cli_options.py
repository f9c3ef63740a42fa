"""The command line as people type it: global options anywhere, `--version`, `emoview info`, options
that do not apply refused, output paths checked before any work, hints that say what to install.

Unwritable places are made the way root cannot get around: a path under a regular file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emoview.models import DEFAULT_MODEL
from emoview.realtime.classifier import EmotionClassifier

from conftest import REPO

ELLIPSIS = "…"


def emoview(*args, env=None, timeout=300):
    base = {k: v for k, v in os.environ.items() if k not in ("EMOVIEW_DEBUG", "COLUMNS")}
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**base, **(env or {})})


def one_line_error(run, *patterns) -> str:
    lines = run.stderr.splitlines()
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert re.match(r"^emoview( \w+)?: error: [^;]+; .+", lines[0]), lines[0]
    for pattern in patterns:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    return lines[0]


def fits(text: str, width: int = 80) -> None:
    assert ELLIPSIS not in text, text  # rich cuts what does not fit to "1…"
    assert all(len(line.rstrip()) <= width for line in text.splitlines()), text


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A regular file: nothing can be written under it, not even by root."""
    path = tmp_path / "a_file"
    path.write_text("a file where a folder should be")
    return path


# -- global options ---------------------------------------------------------------------------


def test_version():
    run = emoview("--version")
    assert run.returncode == 0, run.stderr
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert run.stdout == f"emoview {version}\n"


@pytest.mark.parametrize("order", ["before the command", "after the command"])
def test_debug_anywhere_on_the_command_line(tmp_path, order):
    args = ["analyze", tmp_path / "nope.mp4"]
    run = emoview(*(["--debug", *args] if order == "before the command" else [*args, "--debug"]))
    assert run.returncode != 0 and "Traceback" in run.stderr and "InputError: " in run.stderr, run.stderr
    assert "does not exist" in run.stderr


# -- emoview info -----------------------------------------------------------------------------


def test_info_shows_the_shipped_model_card_and_the_face_model_at_80_columns(face_model):
    run = emoview("info", env={"COLUMNS": "80", "EMOVIEW_FACE_MODEL": str(face_model)})
    assert run.returncode == 0, run.stderr
    fits(run.stdout)
    text = " ".join(run.stdout.split())  # wrapped lines joined
    assert text.startswith("emoview 0.")
    assert f"emotion model {DEFAULT_MODEL} (the one shipped with emoview" in text
    card = EmotionClassifier().metadata  # what the shipped model says about itself, whichever it is
    val, spec = json.loads(card["emoview.metrics"])["val"], json.loads(card["emoview.spec"])
    assert f"labels {', '.join(spec['labels'])}" in text and f"window {spec['window']} frames" in text
    assert f"val accuracy {val['accuracy']:.3f}, macro-F1 {val['macro_f1']:.3f} on {val['items']:,} items" in text
    assert f"train {json.loads(card['emoview.data_summary'])['train']['items']:,}" in text
    assert f"made {card['emoview.created']}" in text
    assert "file matches the shipped sha256" in text and "verified:" in text
    assert f"face model {face_model} sha256 verified (the official bundle), from $EMOVIEW_FACE_MODEL" in text


def test_info_of_an_exported_model_verifies_its_weights_digest(random_model, face_model):
    run = emoview("info", "--model", random_model, "--face-model", face_model, env={"COLUMNS": "80"})
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert "verified: weights match the digest recorded at export" in text
    assert "from --face-model" in text and "validation not recorded" in text


def test_info_shows_then_refuses_a_damaged_model(random_model, tmp_path, face_model):
    from test_weights import flip_weight_bytes

    damaged = flip_weight_bytes(random_model, tmp_path / "damaged.onnx", count=4)
    run = emoview("info", "--model", damaged, "--face-model", face_model, env={"COLUMNS": "80"})
    assert "labels angry" in " ".join(run.stdout.split()) and "MISMATCH" in run.stdout
    one_line_error(run, r"damaged: its weights have sha256")


def test_info_says_where_the_face_model_would_come_from(tmp_path):
    env = {"COLUMNS": "80", "XDG_CACHE_HOME": str(tmp_path / "cache"), "EMOVIEW_FACE_MODEL": ""}
    run = emoview("info", env=env)
    assert run.returncode == 0, run.stderr
    packed = "".join(run.stdout.split())  # a long path is folded across lines
    assert f"facemodel{tmp_path / 'cache' / 'emoview' / 'face_landmarker.task'}notdownloadedyet" in packed
    assert "EMOVIEW_FACE_MODEL=PATH" in run.stdout


def test_info_of_something_else_is_one_line(tmp_path):
    (tmp_path / "notes.onnx").write_text("not a model\n")
    one_line_error(emoview("info", "--model", tmp_path / "notes.onnx"), r"is not an ONNX model", r"--model PATH")
    one_line_error(emoview("info", "--model", tmp_path / "none.onnx"), r"emotion model not found", r"--model PATH")


# -- options that do not apply, and bounds ------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--video", "{video}", "--width", "640"], r"--width set what a camera captures, not --video; drop --width"),
    (["--images", "{images}", "--fps", "30", "--height", "480"], r"--height/--fps set what a camera captures, not --images"),
    (["--images", "{images}", "--paced"], r"--paced plays a --video .* and --images has none; drop --paced"),
    (["--camera", "0", "--paced"], r"--paced plays a --video .* and a camera has none; drop --paced"),
    (["--video", "{video}", "--record", "{tmp}/out"], r"--record .*out: a recording is an H.264 mp4.*; name it e\.g\. .*out\.mp4"),
    (["--video", "{video}", "--record", "{tmp}/out.avi"], r"does not end in \.mp4, \.m4v, \.mov"),
])
def test_live_options_that_do_not_apply_are_refused(samples, tmp_path, args, message):
    values = {"video": samples / "single_face.mp4", "images": samples, "tmp": tmp_path}
    run = emoview(*[a.format(**values) for a in args], "--no-display")
    one_line_error(run, message)
    assert not list(tmp_path.iterdir())


def test_analyze_record_needs_a_video_name(samples, tmp_path):
    one_line_error(emoview("analyze", samples / "single_face.mp4", "--out", tmp_path, "--record", tmp_path / "annotated"),
                   r"a recording is an H.264 mp4")


@pytest.mark.parametrize("command", [["--video", "x.mp4"], ["predict", "x.jpg"], ["eval", "."], ["bench"]])
@pytest.mark.parametrize("threads", ["0", "999"])
def test_threads_are_bounded_by_the_cores(command, threads):
    cores = os.cpu_count()
    run = emoview(*command, "--threads", threads)
    expected = "must be 1 or more" if threads == "0" else rf"must be at most {2 * cores} \(twice this machine's {cores} cores\)"
    one_line_error(run, r"argument --threads: " + expected)


@pytest.mark.parametrize("command", [["train", "ckplus"], ["extract", "."]])
def test_train_and_extract_take_no_emotion_model(command, tmp_path):
    one_line_error(emoview(*command, "--model", tmp_path / "m.onnx"), r"unrecognized arguments: --model")


def test_bench_paced_needs_a_video():
    one_line_error(emoview("bench", "--camera", "0", "--paced"), r"--paced plays a --video like a camera")


# -- output paths are checked before any work --------------------------------------------------


def test_bench_json_under_a_file_is_refused_before_benchmarking(samples, a_file, random_model, face_model):
    run = emoview("bench", "--video", samples / "single_face.mp4", "--json", a_file / "bench.json",
                  "--model", random_model, "--face-model", face_model)
    one_line_error(run, rf"cannot write --json {a_file / 'bench.json'}: {a_file} is a file, not a folder; choose another --json")
    assert run.stdout == ""  # no table: nothing was measured


@pytest.mark.parametrize("command", ["predict", "eval"])
def test_predict_and_eval_json_under_a_file(command, samples, a_file, random_model, face_model):
    target = samples / "single_face.jpg" if command == "predict" else samples
    one_line_error(emoview(command, target, "--json", a_file / "deep" / "out.json", "--model", random_model, "--face-model", face_model),
                   r"cannot write --json .*out\.json: folder .*deep does not exist")


def test_export_refuses_to_replace_a_model_without_overwrite(tmp_path):
    existing = tmp_path / "emotion.onnx"
    existing.write_bytes(b"my model")
    one_line_error(emoview("export", tmp_path / "no-run", "--out", existing),
                   r"--out .*emotion\.onnx already exists; add --overwrite to replace it")
    assert existing.read_bytes() == b"my model"
    # with --overwrite the output is accepted and the run is looked at next
    one_line_error(emoview("export", tmp_path / "no-run", "--out", existing, "--overwrite"), r"no-run does not exist")


@pytest.mark.parametrize("option", ["--out", "--cache"])
def test_train_output_folders_under_a_file(option, a_file, shared, tmp_path):
    args = {"--out": tmp_path / "run", "--cache": tmp_path / "cache"}
    args[option] = a_file / "sub"
    run = emoview("train", "ckplus", "--data", shared / "data", "--out", args["--out"], "--cache", args["--cache"])
    one_line_error(run, rf"cannot write {option} {a_file / 'sub'}: {a_file} is a file, not a folder")


def test_extract_cache_under_a_file(a_file, shared):
    one_line_error(emoview("extract", shared / "data" / "ckplus48", "--cache", a_file / "cache"),
                   r"cannot write --cache .*: .*a_file is a file, not a folder")


# -- hints --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "export"])
def test_without_torch_the_hint_is_the_torch_first_install(command, tmp_path):
    argv = ["train", "ckplus", "--out", str(tmp_path / "run")] if command == "train" else ["export", str(tmp_path), "--out", str(tmp_path / "m.onnx")]
    code = ("import sys; sys.modules['torch'] = None  # as if torch were not installed\n"
            f"from emoview.realtime.commands.cli import main; sys.exit(main({argv!r}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    one_line_error(run, r"missing Python package 'torch'", r"pip install torch==2\.13\.0 first, then pip install -e '\.\[train\]'")


def test_a_missing_face_model_names_the_environment_variable(samples, random_model, tmp_path):
    run = emoview("predict", samples / "single_face.jpg", "--model", random_model, "--face-model", tmp_path / "face.task")
    one_line_error(run, r"face model not found", r"EMOVIEW_FACE_MODEL=PATH")


# -- datasets passed the way people pass them ----------------------------------------------------


@pytest.mark.parametrize("recipe,data", [("ckplus", "ckplus48"), ("ckplus", "."), ("fer2013", "."), ("fer2013", "fer2013")])
def test_data_is_the_dataset_folder_or_the_folder_that_holds_it(shared, recipe, data):
    from emoview.train.config import load_recipe
    from emoview.train.data import _source_path

    source = load_recipe(recipe).sources[0]
    assert _source_path(shared / "data" / data, source).resolve() == (shared / "data" / source.path).resolve()


def test_data_that_holds_no_dataset_says_both_ways(shared):
    from emoview.realtime.errors import InputError
    from emoview.train.config import load_recipe
    from emoview.train.data import _source_path

    with pytest.raises(InputError, match=r"--data must be the folder that holds ckplus48/ \(e\.g\. \.\./shared/data\), or ckplus48/ itself"):
        _source_path(shared / "data" / "fer2013", load_recipe("ckplus").sources[0])


# -- tables fit 80 columns ------------------------------------------------------------------------


def test_eval_tables_fit_80_columns(shared, random_model, face_model, tmp_path):
    import shutil

    root = tmp_path / "val"
    for label in ("angry", "disgust", "surprise"):
        (root / label).mkdir(parents=True)
        for image in sorted((shared / "data" / "fer2013" / "val" / label).iterdir())[:2]:
            shutil.copy(image, root / label)
    run = emoview("eval", root, "--model", random_model, "--face-model", face_model, env={"COLUMNS": "80"})
    assert run.returncode == 0, run.stderr
    assert "confusion matrix" in run.stdout and "surprise" in run.stdout
    fits(run.stdout)


def test_bench_tables_fit_80_columns(samples, random_model, face_model, tmp_path):
    run = emoview("bench", "--video", samples / "single_face.mp4", "--frames", "20", "--record", "--json", tmp_path / "b.json",
                  "--model", random_model, "--face-model", face_model, env={"COLUMNS": "80"})
    assert run.returncode == 0, run.stderr
    assert "threaded," in run.stdout and "landmarker alone" in run.stdout
    fits(run.stdout)
    # and on a machine 20x faster or slower, with a crowd and a busy machine (at 105 fps it once did not)
    from rich.console import Console

    from emoview.realtime.commands.bench import print_tables

    report = json.loads((tmp_path / "b.json").read_text())
    for entry in (report, *report["runs"]):
        entry["end_to_end_fps"], entry["landmarker_fps"] = 1234.5, 9876.5
        entry["latency"] = {key: 1234.5 for key in entry["latency"]}
        entry["faces_per_frame"] = entry["landmarker"]["faces_per_frame"] = 10.0
        entry["other_processes_cores"] = {"run": 1.25, "floor": 12.5}
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    print_tables(report, console)
    fits(console.export_text())
    figures = re.search(r"^threaded, [\w ,]*?\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s", run.stdout, re.M)
    assert figures, run.stdout  # fps, floor fps and ratio whole, on the run's first line
