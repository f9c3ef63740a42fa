"""`emoview bench`: the JSON has every stage and the required keys, in every mode. Speed is not asserted."""

import json
import subprocess
import sys

import pytest

from emoview.realtime.commands.cli import main as emoview_main

REQUIRED = {"frames", "end_to_end_fps", "landmarker_fps", "ratio_to_landmarker", "stages"}
STAGES = ("decode", "landmarks", "features", "model", "smoothing", "overlay", "encode")
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


def bench(tmp_path, samples, face_model, random_model, *args, name="b.json"):
    out = tmp_path / name
    code = emoview_main(["bench", "--video", str(samples / "single_face.mp4"), "--json", str(out),
                         "--model", str(random_model), "--face-model", str(face_model), *map(str, args)])
    assert code == 0
    return json.loads(out.read_text())


def check_run(run, frames, record):
    assert REQUIRED <= set(run)
    assert run["frames"] == frames == run["landmarker"]["frames"]
    assert run["end_to_end_fps"] > 0 and run["landmarker_fps"] > 0
    assert run["ratio_to_landmarker"] == pytest.approx(run["end_to_end_fps"] / run["landmarker_fps"], abs=0.01)
    for stage in STAGES:
        summary = run["stages"][stage]
        if stage == "encode" and not record:
            assert summary["samples"] == 0 and summary["p50_ms"] is None  # not run: no made-up zero
            continue
        assert summary["samples"] == frames, stage
        assert all(isinstance(summary[k], float) and summary[k] >= 0 for k in PERCENTILES), stage
        assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert run["latency"]["samples"] == frames and run["latency"]["p50_ms"] > 0
    assert run["landmarker"]["detect"]["samples"] == frames
    assert 0 < run["cpu"]["cores_used"] and run["cpu"]["wall_s"] > 0
    assert run["codec"] == ("h264" if record else None)


def test_cli_prints_the_table_and_writes_every_stage(tmp_path, samples, face_model, random_model):
    out = tmp_path / "b.json"
    run = subprocess.run(
        [sys.executable, "-m", "emoview", "bench", "--video", str(samples / "single_face.mp4"), "--record", "--json", str(out),
         "--model", str(random_model), "--face-model", str(face_model)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    for word in ("threaded, record, 1 face", "landmarker fps", "ratio", "decode/capture", "landmarks", "encode", "landmarker alone"):
        assert word in run.stdout, word
    data = json.loads(out.read_text())
    check_run(data, 72, record=True)
    assert data["mode"] == "threaded" and data["record"] is True and data["runs"] == []
    assert data["stages"]["record_wait"]["samples"] == 72
    assert data["landmarker"]["frames_with_faces"] == 72 == data["frames_with_faces"]  # same frames, same faces
    assert data["faces_per_frame"] == 1.0 == data["landmarker"]["faces_per_frame"]  # one face, counted once a frame


def test_single_threaded_mode_encodes_inline(tmp_path, samples, face_model, random_model):
    data = bench(tmp_path, samples, face_model, random_model, "--mode", "single", "--record", "--frames", "30")
    check_run(data, 30, record=True)
    assert data["mode"] == "single" and data["stages"]["record_wait"]["samples"] == 0
    assert data["stopped_by"] == "limit"


def test_paced_run_reports_latency_and_accounts_for_every_frame(tmp_path, samples, face_model, random_model):
    data = bench(tmp_path, samples, face_model, random_model, "--paced", "--rate", "30")
    assert data["paced"] is True and data["paced_rate_fps"] == 30.0
    assert data["frames"] + data["dropped"] == 72  # analysed or dropped, nothing lost in between
    assert data["latency"]["p95_ms"] > 0 and data["landmarker"]["frames"] == 72
    assert data["cpu"]["wall_s"] >= 71 / 30 * 0.9  # really played in real time


def test_all_runs_the_matrix_with_the_default_on_top(tmp_path, samples, face_model, random_model):
    data = bench(tmp_path, samples, face_model, random_model, "--all", "--frames", "10")
    check_run(data, 10, record=False)
    assert (data["mode"], data["record"], data["max_faces"], data["paced"]) == ("threaded", False, 1, False)
    combos = {(r["mode"], r["record"], r["max_faces"], r["paced"], r["paced_rate_fps"]) for r in data["runs"]}
    for mode in ("threaded", "single"):
        for record in (False, True):
            for faces in (1, 4):
                if (mode, record, faces) != ("threaded", False, 1):
                    assert (mode, record, faces, False, None) in combos
    assert {("threaded", False, 1, True, None), ("threaded", False, 1, True, 30.0), ("threaded", True, 1, True, 30.0)} <= combos
    for run in data["runs"]:
        assert REQUIRED <= set(run) and set(STAGES) <= set(run["stages"])
        assert run["landmarker"]["frames"] == 10
        assert run["faces_per_frame"] == 1.0 == run["landmarker"]["faces_per_frame"], run["name"]  # single mode counts too
    assert all(r["landmarker"]["detect"]["samples"] == 10 for r in data["runs"])  # each run has its own floor, same frames


def test_paced_single_threaded_is_refused_in_one_line(tmp_path, samples):
    run = subprocess.run([sys.executable, "-m", "emoview", "bench", "--video", str(samples / "single_face.mp4"), "--paced", "--mode", "single"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and run.stderr.strip().count("\n") == 0 and "--paced" in run.stderr


def test_overlapped_landmarking_computes_exactly_what_sequential_analysis_does(samples, face_model, random_model):
    """The speed-up must not change a single number: same faces, ids, boxes and model outputs per frame."""
    import argparse
    import contextlib

    import numpy as np

    from emoview.realtime.commands.live import open_analyzer
    from emoview.realtime.session import Session
    from emoview.realtime.sources import VideoSource

    args = argparse.Namespace(model=str(random_model), face_model=str(face_model), threads=1, window=None, max_faces=2, min_confidence=0.5)
    runs = {}
    for overlap in (True, False):
        seen = []
        with contextlib.ExitStack() as stack:
            analyzer = open_analyzer(args, stack)
            source = stack.enter_context(VideoSource(samples / "noface_face.mov"))
            Session(source, analyzer, on_result=seen.append, overlap=overlap).run()
        runs[overlap] = [(r.frame.index, [(f.id, f.box, f.raw, f.probabilities) for f in r.faces]) for r in seen]
    assert len(runs[True]) == len(runs[False]) == 169
    assert 0 < sum(bool(faces) for _, faces in runs[True]) < 169
    for (index_a, faces_a), (index_b, faces_b) in zip(runs[True], runs[False]):
        assert index_a == index_b and len(faces_a) == len(faces_b)
        for (id_a, box_a, raw_a, p_a), (id_b, box_b, raw_b, p_b) in zip(faces_a, faces_b):
            assert id_a == id_b and box_a == box_b
            assert np.array_equal(raw_a, raw_b) and np.array_equal(p_a, p_b)


def test_measure_video_reports_faces_per_frame_beside_the_landmarker_alone(samples, face_model, random_model):
    from emoview.realtime.commands.bench import measure_video

    report = measure_video(samples / "single_face.mp4", max_faces=2, min_face=40, frames=24, model=random_model, face_model=face_model)
    check_run(report, 24, record=False)
    assert report["max_faces"] == 2 and report["input"]["min_face"] == 40
    assert report["faces_per_frame"] == 1.0 == report["landmarker"]["faces_per_frame"]  # one face, found once per frame


def test_the_dated_report_script_renders_a_recorded_report(monkeypatch):
    """`benchmarks/run_benchmarks.py` imports from the bench command; a rename there must not leave
    the report script broken until the next time someone runs the whole matrix."""
    import importlib
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))
    monkeypatch.delitem(sys.modules, "run_benchmarks", raising=False)
    script = importlib.import_module("run_benchmarks")
    report = json.loads((benchmarks / "reports" / "2026-12-03.json").read_text())
    text = script.markdown(report)
    assert text.startswith("# emoview benchmarks, 2026-12-03")
    assert "| threaded, no record, 1 face | 472 | 114.9 | 116.3 | **0.99** | 14.5 | 22.1 | 30.4 |" in text
    assert "ratio 0.99 (target >= 0.85) met" in text
