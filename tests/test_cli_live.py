"""The live analyzer as a user runs it: the real `emoview` CLI in a subprocess, on real videos."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[1]


def emoview(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def recorded_frames(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, stream.width, stream.height, sum(1 for _ in container.decode(stream))


def test_video_is_analysed_and_recorded_as_h264(tmp_path, samples, face_model, random_model):
    out = tmp_path / "out.mp4"
    run = emoview("--video", samples / "WolfgangLanger_Pexels.mp4", "--record", out, "--no-display",
                  "--model", random_model, "--face-model", face_model)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "472 frames (end of input), faces in 472" in run.stderr
    assert "recorded 472 frames" in run.stderr
    assert recorded_frames(out) == ("h264", 640, 360, 472)


@pytest.mark.parametrize("name,faces", [
    ("single_face.mp4", "all"), ("face_noface.mov", "some"), ("noface_face.mov", "some"), ("no_face.mp4", "none"),
])
def test_every_sample_runs_through(tmp_path, samples, face_model, random_model, name, faces):
    out = tmp_path / "out.mp4"
    run = emoview("--video", samples / name, "--record", out, "--no-display", "--model", random_model, "--face-model", face_model)
    assert run.returncode == 0, run.stderr
    frames, with_faces = map(int, re.search(r"(\d+) frames \(end of input\), faces in (\d+)", run.stderr).groups())
    assert recorded_frames(out)[3] == frames  # no-face frames are recorded too
    assert {"all": with_faces == frames, "some": 0 < with_faces < frames, "none": with_faces == 0}[faces]


def test_sigint_and_sigterm_mid_run_leave_a_playable_recording(tmp_path, samples, face_model, random_model):
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / f"{sig.name}.mp4"
        proc = subprocess.Popen(
            [sys.executable, "-m", "emoview", "--video", str(samples / "WolfgangLanger_Pexels.mp4"), "--record", str(out),
             "--no-display", "--model", str(random_model), "--face-model", str(face_model)],
            stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while (not out.exists() or out.stat().st_size < 20_000) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "interrupted" in err
        written = int(re.search(r"recorded (\d+) frames", err).group(1))
        assert 0 < written < 472
        assert recorded_frames(out)[3] == written


def test_help_reads_well():
    run = emoview("--help")
    assert run.returncode == 0
    for word in ("--camera", "--video", "--record", "--no-display", "--max-faces", "--window", "--model", "--face-model", "analyze", "bench", "train"):
        assert word in run.stdout


def test_missing_camera_is_one_line_and_non_zero(face_model, random_model):
    run = emoview("--camera", "7", "--no-display", "--model", random_model, "--face-model", face_model)
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "camera 7 could not be opened" in run.stderr


def test_runtime_never_imports_torch_or_training_code():
    code = (
        "import sys, emoview.realtime.commands.cli, emoview.realtime.commands.live, emoview.realtime.session, emoview.realtime.annotate, emoview.realtime.recorder;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(('emoview.train', 'emoview.export')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    for path in (REPO / "realtime").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(torch|emoview\.train|emoview\.export)\b", text, re.M), path


@pytest.mark.skipif(not os.environ.get("CI") and not shutil.which("xvfb-run"), reason="needs xvfb-run (CI installs it)")
def test_window_opens_under_xvfb_and_q_stops_it(tmp_path, samples, face_model, random_model):
    """A real window on a virtual X display: it shows annotated frames and `q` closes it."""
    assert shutil.which("xvfb-run") and shutil.which("xdotool"), "CI must install xvfb and xdotool"
    script = f"""
{sys.executable} -m emoview --video {samples / 'WolfgangLanger_Pexels.mp4'} --model {random_model} --face-model {face_model} 2>{tmp_path / 'err.txt'} &
pid=$!
for i in $(seq 1 200); do w=$(xdotool search --name 'emoview - ' 2>/dev/null | head -1); [ -n "$w" ] && break; sleep 0.1; done
[ -n "$w" ] || {{ echo "no window"; kill $pid; exit 3; }}
sleep 2
xdotool windowactivate --sync $w key q 2>/dev/null || xdotool key --window $w q
wait $pid
echo "exit=$?"
"""
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", "bash", "-c", script], capture_output=True, text=True, timeout=120)
    err = (tmp_path / "err.txt").read_text() if (tmp_path / "err.txt").exists() else ""
    assert "exit=0" in run.stdout, run.stdout + run.stderr + err
    assert "stopped by user" in err and "no display" not in err
