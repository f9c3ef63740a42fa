"""`emoview analyze`: per-second timelines (JSON, CSV, PNG) from real videos, through the real CLI."""

import csv
import json
import math
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from emoview.realtime.commands.cli import main as emoview_main
from emoview.realtime.pipeline import FaceResult, FrameResult
from emoview.realtime.sources import Frame, VideoSource
from emoview.realtime.timeline import TimelineBuilder

from conftest import FER_LABELS

WOLFGANG = "WolfgangLanger_Pexels.mp4"


def analyze_cli(*args):
    return subprocess.run([sys.executable, "-m", "emoview", "analyze", *map(str, args)], capture_output=True, text=True, timeout=300)


def seconds_of_video(path):
    """Frames per second of media time, from the file's own timestamps (decode only, no analysis)."""
    with VideoSource(path) as source:
        stamps = [frame.timestamp_ms for frame in source]
    counts = np.bincount([int((t - stamps[0]) // 1000) for t in stamps])
    return counts.tolist(), len(stamps)


@pytest.fixture(scope="module")
def wolfgang(tmp_path_factory, samples, face_model, random_model):
    out = tmp_path_factory.mktemp("analyze")
    run = analyze_cli(samples / WOLFGANG, "--out", out, "--csv", "--model", random_model, "--face-model", face_model)
    return run, out


def test_cli_writes_json_csv_and_png_next_to_each_other(wolfgang):
    run, out = wolfgang
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "472 frames, 20 s of video, 1 face(s)" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"timeline.{ext}" for ext in ("csv", "json", "png")]


def test_timeline_json_has_one_entry_per_second_for_the_one_face(wolfgang, samples, random_model):
    _, out = wolfgang
    data = json.loads((out / "timeline.json").read_text())
    per_second, total = seconds_of_video(samples / WOLFGANG)
    assert total == 472 and len(per_second) == 20
    assert data["seconds"] == 20
    assert data["frames_per_second"] == per_second
    assert list(data["faces"]) == ["1"]
    entries = data["faces"]["1"]
    assert len(entries) == 20
    for second, entry in enumerate(entries):
        assert set(entry) == {"t", "probabilities", "label", "frames"}
        assert entry["t"] == second
        assert entry["frames"] == per_second[second]  # the face is in every frame of this video
        probabilities = entry["probabilities"]
        assert tuple(probabilities) == FER_LABELS
        assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-3)
        assert entry["label"] == max(probabilities, key=probabilities.get)
    summary = data["summary"]
    assert summary["faces"] == 1 and summary["frames_analysed"] == 472 and summary["frames_with_faces"] == 472
    assert summary["complete"] is True and summary["stopped_by"] == "end"
    assert summary["processing_fps"] > 0
    assert summary["dominant_emotion"] in FER_LABELS
    assert math.isclose(sum(summary["time_share"].values()), 1.0, abs_tol=1e-3)
    labels = [e["label"] for e in entries]
    assert summary["dominant_emotion"] == max(set(labels), key=lambda label: sum(e["frames"] for e in entries if e["label"] == label))
    assert data["model"]["labels"] == list(FER_LABELS)
    assert data["model"]["path"] == str(random_model)
    assert data["model"]["spec"]["window"] == 15
    assert data["video"]["frames"] == 472 and data["video"]["size"] == [640, 360]


def test_csv_holds_the_same_numbers_as_the_json(wolfgang):
    _, out = wolfgang
    data = json.loads((out / "timeline.json").read_text())
    with (out / "timeline.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(len(entries) for entries in data["faces"].values())
    for row in rows:
        entry = data["faces"][row["face"]][int(row["t"])]
        assert row["present"] == "1" and entry is not None
        assert row["label"] == entry["label"] and int(row["frames"]) == entry["frames"]
        for label in FER_LABELS:
            assert float(row[f"p_{label}"]) == entry["probabilities"][label]


def test_png_is_a_real_picture_in_the_emotion_colours(wolfgang):
    import matplotlib.image

    from emoview.realtime.timeline_plot import rgb

    _, out = wolfgang
    path = out / "timeline.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    image = matplotlib.image.imread(path)[..., :3]
    assert image.shape[0] > 250 and image.shape[1] > 800
    colours = {tuple(c) for c in (image.reshape(-1, 3) * 255).round().astype(int)}
    assert len(colours) > 50
    present = [label for label in FER_LABELS if tuple(round(v * 255) for v in rgb(label)) in colours]
    assert len(present) >= 5  # the stacked bands are drawn in the overlay's colours


def test_existing_outputs_are_refused_without_overwrite(wolfgang, samples, face_model, random_model):
    _, out = wolfgang
    before = (out / "timeline.json").stat().st_mtime_ns
    run = analyze_cli(samples / WOLFGANG, "--out", out, "--model", random_model, "--face-model", face_model)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "already exists" in run.stderr and "--overwrite" in run.stderr
    assert (out / "timeline.json").stat().st_mtime_ns == before


def test_missing_video_is_one_line(tmp_path):
    run = analyze_cli(tmp_path / "nope.mp4", "--out", tmp_path)
    assert run.returncode != 0 and run.stderr.strip().count("\n") == 0 and "does not exist" in run.stderr


def test_face_leaving_gives_null_seconds_and_means_of_the_raw_output(tmp_path, samples, face_model, random_model, monkeypatch):
    """face_noface.mov: the face walks out. Per-second means are recomputed here from every frame."""
    import emoview.realtime.commands.analyze as analyze_command

    seen = []  # (timestamp, face id, raw probabilities) for every face in every frame

    class Recording(TimelineBuilder):
        def add(self, result):
            seen.extend((result.frame.timestamp_ms, f.id, f.raw.copy()) for f in result.faces)
            seen.append((result.frame.timestamp_ms, None, None))
            super().add(result)

    monkeypatch.setattr(analyze_command, "TimelineBuilder", Recording)
    code = emoview_main(["analyze", str(samples / "face_noface.mov"), "--out", str(tmp_path), "--model", str(random_model), "--face-model", str(face_model)])
    assert code == 0
    data = json.loads((tmp_path / "timeline.json").read_text())
    first = seen[0][0]
    expected: dict[str, dict[int, list]] = {}
    for ts, face_id, raw in seen:
        if face_id is not None:
            expected.setdefault(str(face_id), {}).setdefault(int((ts - first) // 1000), []).append(raw)
    assert data["seconds"] == 7  # 6.36 s of timestamps plus the last frame's duration
    assert set(data["faces"]) == set(expected)
    for face_id, entries in data["faces"].items():
        assert len(entries) == data["seconds"]
        for second, entry in enumerate(entries):
            if second not in expected[face_id]:
                assert entry is None
                continue
            mean = np.mean(expected[face_id][second], axis=0)
            assert entry["frames"] == len(expected[face_id][second])
            assert np.allclose([entry["probabilities"][label] for label in FER_LABELS], mean, atol=6e-5)
    face = data["faces"]["1"]
    assert face[0] is not None and face[0]["frames"] >= 20
    trailing = [entry is None for entry in face]
    assert trailing[-3:] == [True, True, True]  # gone for the last seconds: null, not zeros
    summary = data["summary"]
    assert 0 < summary["frames_with_faces"] < summary["frames_analysed"] == 169
    assert summary["per_face"]["1"]["seconds_present"] == sum(e is not None for e in face)


def result_at(ts, faces):
    return FrameResult(Frame(np.zeros((2, 2, 3), np.uint8), 0, ts, 0.0), faces)


def face(face_id, raw, smoothed=None):
    raw = np.array(raw, dtype=np.float32)
    return FaceResult(face_id, (0, 0, 1, 1), None, raw if smoothed is None else np.array(smoothed, np.float32), "x", 15, raw=raw)


def test_aggregation_is_the_mean_of_raw_outputs_per_second_with_null_gaps():
    labels = ("calm", "glad")
    builder = TimelineBuilder(labels, fps=4.0)
    for i in range(10):  # 4 fps from t=0.5 s: seconds 0, 1, 2 (2.5 s + one frame = 3 seconds)
        ts = 500.0 + i * 250.0
        second = int((ts - 500.0) // 1000)
        faces = [face(1, [0.2, 0.8] if second == 0 else [0.9, 0.1], smoothed=[0.5, 0.5])]
        if second != 1:
            faces.append(face(2, [0.4 + 0.1 * (i % 2), 0.6 - 0.1 * (i % 2)]))
        builder.add(result_at(ts, faces))
    data = builder.build(processing_fps=12.345)
    assert data["seconds"] == 3 and data["frames_per_second"] == [4, 4, 2]
    one, two = data["faces"]["1"], data["faces"]["2"]
    assert one[0] == {"t": 0, "probabilities": {"calm": 0.2, "glad": 0.8}, "label": "glad", "frames": 4}  # raw, not the smoothed 0.5
    assert one[1]["label"] == "calm" and one[2]["frames"] == 2
    assert two[1] is None and two[0]["probabilities"] == {"calm": 0.45, "glad": 0.55} and two[2]["frames"] == 2
    summary = data["summary"]
    assert summary["faces"] == 2 and summary["frames_analysed"] == 10 and summary["frames_with_faces"] == 10
    # face-frames: face 1 glad 4 + calm 6; face 2 glad 4 + 2 (both its seconds lean glad)
    assert summary["time_share"] == {"calm": round(6 / 16, 4), "glad": round(10 / 16, 4)}
    assert summary["dominant_emotion"] == "glad" and summary["processing_fps"] == 12.35
    assert summary["per_face"]["2"]["seconds_present"] == 2 and summary["per_face"]["1"]["dominant_emotion"] == "calm"


def test_a_video_without_faces_gives_all_null_and_no_dominant_emotion(tmp_path):
    from emoview.realtime.timeline_plot import plot_timeline

    builder = TimelineBuilder(("a", "b"), fps=10.0)
    for i in range(25):
        builder.add(result_at(i * 100.0, []))
    data = builder.build(10.0)
    assert data["seconds"] == 3 and data["faces"] == {} and data["summary"]["dominant_emotion"] is None
    assert plot_timeline(data, ("a", "b"), tmp_path / "empty.png").stat().st_size > 5_000


def test_sigint_mid_run_writes_a_partial_timeline_and_a_playable_recording(tmp_path, samples, face_model, random_model):
    record = tmp_path / "annotated.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoview", "analyze", str(samples / WOLFGANG), "--out", str(tmp_path), "--record", str(record),
         "--model", str(random_model), "--face-model", str(face_model)],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while (not record.exists() or record.stat().st_size < 20_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: partial timeline" in err
    data = json.loads((tmp_path / "timeline.json").read_text())
    summary = data["summary"]
    assert summary["complete"] is False and summary["stopped_by"] == "interrupt"
    assert 0 < summary["frames_analysed"] < 472
    assert data["seconds"] == len(data["faces"]["1"]) < 20
    assert sum(e["frames"] for e in data["faces"]["1"] if e) == summary["frames_with_faces"]
    assert (tmp_path / "timeline.png").stat().st_size > 10_000
    with av.open(str(record)) as container:
        recorded = sum(1 for _ in container.decode(video=0))
    # the frame being handed over when Ctrl-C landed may be in the video but not yet in the timeline
    assert summary["frames_analysed"] <= recorded <= summary["frames_analysed"] + 1


def test_output_names_in_a_folder_of_their_own_or_beside_the_video(tmp_path):
    from emoview.realtime.commands.analyze import output_paths

    video = tmp_path / "videos" / "talk.mp4"
    assert output_paths(video, str(tmp_path / "talk"), csv=True) == {
        kind: tmp_path / "talk" / f"timeline.{kind}" for kind in ("json", "png", "csv")
    }
    assert output_paths(video, None, csv=False) == {kind: video.parent / f"talk.timeline.{kind}" for kind in ("json", "png")}


@pytest.mark.parametrize("seconds", [3, 5, 7, 13, 24, 47, 120, 121, 333, 3700])
def test_plot_ticks_sit_on_whole_seconds_and_read_their_own_time(seconds):
    """A tick at 2.5 s labelled "2 s" was a lie: every tick is a whole second and says which."""
    from emoview.realtime.timeline_plot import timeline_figure

    builder = TimelineBuilder(("calm", "glad"), fps=2.0)
    for i in range(seconds * 2):
        builder.add(result_at(i * 500.0, [face(1, [0.3, 0.7] if i % 7 else [0.8, 0.2])]))
    figure = timeline_figure(builder.build(2.0), ("calm", "glad"))
    figure.canvas.draw()
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    ticks = [(tick.get_loc(), tick.label1.get_text()) for tick in ax.xaxis.get_major_ticks() if low <= tick.get_loc() <= high]
    assert 3 <= len(ticks) <= 12, ticks
    for position, text in ticks:
        assert position == round(position), ticks
        whole = round(position)
        expected = f"{whole} s" if seconds <= 120 else f"{whole // 60}:{whole % 60:02d}"
        assert text == expected, ticks
    if seconds > 120:
        assert all(round(position) % 15 == 0 for position, _ in ticks)  # whole quarter minutes at least
