"""`emoview analyze` on many videos with local worker processes: same timelines whatever the number
of workers, one row per input whatever goes wrong, resumable, a killed worker costs one retry."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emoview.realtime.batch_inputs import expand_inputs, is_batch
from emoview.realtime.commands.cli import main
from emoview.realtime.workers import usable_cores


def read_index(out: Path) -> dict[str, dict]:
    with (out / "index.csv").open() as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def per_second(path: Path) -> dict:
    """Every face's per-second labels and probabilities: what must not depend on the backend."""
    data = json.loads(path.read_text())
    return {face: [None if e is None else (e["label"], e["probabilities"], e["frames"]) for e in entries] for face, entries in data["faces"].items()}


@pytest.fixture(scope="module")
def videos(tmp_path_factory, samples) -> Path:
    """Three real clips, two of them with the same file name in different folders."""
    root = tmp_path_factory.mktemp("batch") / "videos"
    for name, sample in (("day1/clip.mp4", "single_face.mp4"), ("day2/clip.mp4", "face_noface.mov"), ("empty.mp4", "no_face.mp4")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(samples / sample)
    return root


def analyze(*args, env=None) -> int:
    return main(["analyze", *map(str, args)])


@pytest.fixture(scope="module")
def one_worker(videos, random_model, face_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    code = analyze(videos, "--out", out, "--workers", 1, "--csv", "--model", random_model, "--face-model", face_model)
    return code, out


def test_a_folder_gives_a_timeline_per_video_in_the_same_tree_and_an_index(one_worker, videos, random_model):
    code, out = one_worker
    assert code == 0
    for key in ("day1/clip.mp4", "day2/clip.mp4", "empty.mp4"):
        for kind in ("json", "csv", "png"):
            assert (out / f"{key}.timeline.{kind}").stat().st_size > 0
    index = read_index(out)
    assert set(index) == {str(videos / key) for key in ("day1/clip.mp4", "day2/clip.mp4", "empty.mp4")}
    assert {row["status"] for row in index.values()} == {"ok"}
    one = index[str(videos / "day1/clip.mp4")]
    assert one["faces"] == "1" and one["seconds"] == "3" and one["frames"] == "72" and one["dominant_emotion"]
    assert float(one["processing_fps"]) > 0 and one["attempts"] == "1" and float(one["peak_rss_mb"]) > 50
    empty = index[str(videos / "empty.mp4")]
    assert empty["faces"] == "0" and empty["dominant_emotion"] == "" and empty["error"] == ""
    summary = json.loads((out / "index.json").read_text())
    assert summary["videos"] == 3 and summary["ok"] == 3 and summary["failed"] == 0 and len(summary["rows"]) == 3
    data = json.loads((out / "day2/clip.mp4.timeline.json").read_text())
    assert data["fingerprint"] == summary["fingerprint"] and data["model"]["path"] == str(random_model)


def test_one_worker_two_workers_and_the_python_api_give_the_same_seconds(one_worker, videos, random_model, face_model, tmp_path):
    import emoview

    _, first = one_worker
    assert analyze(videos, "--out", tmp_path, "--workers", 2, "--model", random_model, "--face-model", face_model) == 0
    for key in ("day1/clip.mp4", "day2/clip.mp4", "empty.mp4"):
        expected = per_second(first / f"{key}.timeline.json")
        assert per_second(tmp_path / f"{key}.timeline.json") == expected
        alone = emoview.analyze_video(videos / key, model=random_model, face_model=face_model).to_json()
        assert per_second_text(alone) == expected
    assert any(entry for entries in per_second(first / "day2/clip.mp4.timeline.json").values() for entry in entries)


def per_second_text(text: str) -> dict:
    data = json.loads(text)
    return {face: [None if e is None else (e["label"], e["probabilities"], e["frames"]) for e in entries] for face, entries in data["faces"].items()}


def test_a_rerun_skips_what_is_done_and_another_model_or_force_redoes_it(videos, random_model, fused_model, face_model, tmp_path):
    target = tmp_path / "day1/clip.mp4.timeline.json"
    args = ("--out", tmp_path, "--workers", 1, "--face-model", face_model)
    assert analyze(videos / "day1", videos / "empty.mp4", *args, "--model", random_model) == 0
    made = target.stat().st_mtime_ns
    assert analyze(videos / "day1", videos / "empty.mp4", *args, "--model", random_model) == 0
    assert {row["status"] for row in read_index(tmp_path).values()} == {"skipped"}
    assert target.stat().st_mtime_ns == made
    assert analyze(videos / "day1", videos / "empty.mp4", *args, "--model", fused_model) == 0  # another model: done again
    assert {row["status"] for row in read_index(tmp_path).values()} == {"ok"}
    remade = target.stat().st_mtime_ns
    assert remade != made and json.loads(target.read_text())["model"]["path"] == str(fused_model)
    assert analyze(videos / "day1", videos / "empty.mp4", *args, "--model", fused_model, "--force") == 0
    assert {row["status"] for row in read_index(tmp_path).values()} == {"ok"} and target.stat().st_mtime_ns != remade


def test_bad_inputs_are_rows_and_the_exit_status_says_something_failed(videos, samples, random_model, face_model, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.mp4").write_text("not a video\n")
    whole = (samples / "WolfgangLanger_Pexels.mp4").read_bytes()
    (bad / "cut.mp4").write_bytes(whole[: len(whole) // 8])
    missing = tmp_path / "gone.mp4"
    out = tmp_path / "out"
    code = analyze(bad, missing, videos / "empty.mp4", tmp_path / "none-*.mov", "--out", out, "--workers", 2,
                   "--model", random_model, "--face-model", face_model)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "4 failed" in err
    index = read_index(out)
    assert len(index) == 5
    assert index[str(bad / "notes.mp4")]["status"] == "failed" and "cannot be opened as a video" in index[str(bad / "notes.mp4")]["error"]
    cut = index[str(bad / "cut.mp4")]
    assert cut["status"] == "failed" and "truncated" in cut["error"] and "of its 472 frames" in cut["error"]
    assert index[str(missing)]["status"] == "failed" and "does not exist" in index[str(missing)]["error"]
    assert "matches no file" in index[str(tmp_path / "none-*.mov")]["error"]
    empty = index[str(videos / "empty.mp4")]
    assert empty["status"] == "ok" and empty["faces"] == "0"
    assert not list(out.rglob("notes.mp4.*")) and not list(out.rglob("cut.mp4.*"))  # a failed video leaves no output
    assert not list(out.rglob("*.tmp*"))


@pytest.mark.parametrize("once", [True, False], ids=["dies once: retried", "dies every time: failed"])
def test_a_killed_worker_costs_one_video_and_a_rerun_finishes_only_that(videos, random_model, face_model, tmp_path, monkeypatch, once):
    monkeypatch.setenv("EMOVIEW_TEST_DIE_ON", "clip.mp4")  # both day1/clip.mp4 and day2/clip.mp4
    if once:
        monkeypatch.setenv("EMOVIEW_TEST_DIE_MARKER", str(tmp_path / "died"))
    out = tmp_path / "out"
    args = (videos, "--out", out, "--workers", 2, "--model", random_model, "--face-model", face_model)
    code = analyze(*args)
    index = read_index(out)
    assert len(index) == 3 and index[str(videos / "empty.mp4")]["status"] == "ok"
    clips = [index[str(videos / key)] for key in ("day1/clip.mp4", "day2/clip.mp4")]
    if once:  # the first clip to start killed its worker once: it was retried on a fresh one
        assert code == 0 and [row["status"] for row in clips] == ["ok", "ok"]
        assert sorted(row["attempts"] for row in clips) == ["1", "2"]
        return
    assert code == 1
    for row in clips:
        assert row["status"] == "failed" and row["attempts"] == "3" and "worker process died" in row["error"]
    monkeypatch.delenv("EMOVIEW_TEST_DIE_ON")
    assert analyze(*args) == 0
    again = read_index(out)
    assert again[str(videos / "empty.mp4")]["status"] == "skipped"
    assert [again[str(videos / key)]["status"] for key in ("day1/clip.mp4", "day2/clip.mp4")] == ["ok", "ok"]


def test_inputs_expand_folders_globs_and_list_files_and_mirror_their_tree(tmp_path):
    for name in ("a/x.mp4", "a/deep/y.MOV", "b/x.mp4", "b/.hidden.mp4", "b/notes.txt.bak", "c/z.mkv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "lists" / "todo.txt"
    listing.parent.mkdir()
    listing.write_text(f"# clips\n../c/z.mkv\n\n{tmp_path / 'a' / 'x.mp4'}\nmissing.mp4\n")
    items = expand_inputs([str(tmp_path / "a"), str(tmp_path / "b" / "*.mp4"), str(listing)])
    keys = {item.shown: item.key for item in items}
    assert keys == {
        str(tmp_path / "a/deep/y.MOV"): "a/deep/y.MOV",
        str(tmp_path / "a/x.mp4"): "a/x.mp4",  # named again by the list: once
        str(tmp_path / "b/x.mp4"): "b/x.mp4",  # the same name in another folder: another key
        str(tmp_path / "c/z.mkv"): "c/z.mkv",
        str(listing.parent / "missing.mp4"): "",
    }
    problem = next(item for item in items if item.path is None)
    assert "does not exist" in problem.problem
    assert [item.key for item in expand_inputs([str(tmp_path / "a")])] == ["x.mp4", "deep/y.MOV"]
    assert is_batch([str(tmp_path / "a")]) and is_batch([str(listing)]) and is_batch(["a.mp4", "b.mp4"]) and is_batch([str(tmp_path / "*.mp4")])
    assert not is_batch([str(tmp_path / "a/x.mp4")]) and not is_batch([str(tmp_path / "nope.mp4")])


def test_batch_option_mistakes_are_one_line(videos, tmp_path, capsys):
    assert analyze(videos, "--workers", 1) == 2
    assert "needs --out DIR" in capsys.readouterr().err
    assert analyze(videos, "--out", tmp_path, "--record", tmp_path / "x.mp4") == 2
    assert "--record works for one video" in capsys.readouterr().err
    too_many = usable_cores() + 1
    assert analyze(videos, "--out", tmp_path, "--workers", too_many) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--workers {too_many} x --threads 1" in err[0]
    assert not (tmp_path / "index.csv").exists()


def test_without_ray_the_ray_option_says_how_to_get_it(videos, tmp_path):
    blocked = "import sys; sys.modules['ray'] = None; from emoview.realtime.commands.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", blocked, "analyze", str(videos), "--out", str(tmp_path), "--ray"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "pip install 'emoview[ray]'" in run.stderr and "Traceback" not in run.stderr


def test_help_shows_the_batch_options():
    run = subprocess.run([sys.executable, "-m", "emoview", "analyze", "--help"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0
    for option in ("--workers N", "--ray [ADDRESS]", "--force", "index.csv"):
        assert option in run.stdout


def test_ctrl_c_stops_the_workers_and_still_writes_the_index(samples, random_model, face_model, tmp_path):
    import signal
    import time
    import uuid

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").symlink_to(samples / "single_face.mp4")
    for name in "bcde":  # long enough to be still running when the signal comes
        (videos / f"{name}.mp4").symlink_to(samples / "WolfgangLanger_Pexels.mp4")
    out = tmp_path / "out"
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoview", "analyze", str(videos), "--out", str(out), "--workers", "2",
         "--model", str(random_model), "--face-model", str(face_model)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "EMOVIEW_TEST_TAG": tag},
    )
    deadline = time.monotonic() + 240
    while not (out / "a.mp4.timeline.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    index = read_index(out)
    assert len(index) == 5 and index[str(videos / "a.mp4")]["status"] == "ok"
    unfinished = [row for row in index.values() if row["status"] == "failed"]
    assert unfinished and all("interrupted" in row["error"] for row in unfinished)
    assert not list(out.rglob("*.tmp*"))
    left = []  # the driver kills and reaps its workers before it exits
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"EMOVIEW_TEST_TAG={tag}".encode() in environ.read_bytes():
                left.append(environ.parent.name)
        except OSError:
            pass
    assert left == [], "worker processes outlived the batch"


def test_an_output_that_cannot_be_written_is_that_videos_failed_row(videos, random_model, face_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "day1").write_text("a file where day1's folder of timelines must go\n")
    code = analyze(videos, "--out", out, "--workers", 1, "--model", random_model, "--face-model", face_model)
    index = read_index(out)
    assert code == 1
    blocked = index[str(videos / "day1/clip.mp4")]
    assert blocked["status"] == "failed" and "cannot write" in blocked["error"]
    assert [index[str(videos / key)]["status"] for key in ("day2/clip.mp4", "empty.mp4")] == ["ok", "ok"]
