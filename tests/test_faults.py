"""Faults during a run: signals at any moment, a stream that stops, a full disk, a failing thread.

Whatever happens, the run stops without a traceback, says how far it got, and what it recorded
stays readable with exactly the frames it reported. Subprocess tests run the real CLI; the
thread-failure tests inject the fault in-process through the real objects (a capture that starts
failing, an encoder that hits ENOSPC), because a thread cannot be made to fail from outside.
"""

from __future__ import annotations

import contextlib
import errno
import json
import faulthandler
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "emoview", *map(str, args)]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "EMOVIEW_DEBUG"}


def decodable_frames(path: Path) -> int:
    """Frames a player gets out of the file, up to the first undecodable byte."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(container.streams.video[0]):
                count += 1
        except av.error.FFmpegError:
            pass
    return count


def recorded(stderr: str) -> int | None:
    match = re.search(r"^recorded (\d+) frames to ", stderr, re.M)
    return int(match.group(1)) if match else None


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


@contextlib.contextmanager
def watchdog(seconds: float = 120):
    """A hang fails the test (with every thread's stack) instead of blocking the suite."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def loaded(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the run to reach the moment under test"
        time.sleep(0.02)


# -- signals at any moment ------------------------------------------------------------------------

MOMENTS = {
    # (what to wait for, signals to send one after another)
    "while loading the emotion model": (lambda pid, out: loaded(pid, "onnxruntime"), [signal.SIGINT]),
    "while loading the face model": (lambda pid, out: loaded(pid, "libmediapipe"), [signal.SIGTERM]),
    "mid-run": (lambda pid, out: out.exists() and out.stat().st_size > 20_000, [signal.SIGTERM]),
    "mid-run, then again while finalizing": (
        lambda pid, out: out.exists() and out.stat().st_size > 20_000,
        [signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGINT],
    ),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_signal_at_any_moment_stops_cleanly_and_keeps_a_playable_recording(tmp_path, samples, face_model, random_model, moment):
    ready, signals = MOMENTS[moment]
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        cli("--video", samples / "WolfgangLanger_Pexels.mp4", "--record", out, "--no-display",
            "--model", random_model, "--face-model", face_model),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=clean_env(),
    )
    try:
        wait_for(lambda: ready(proc.pid, out) or proc.poll() is not None)
        assert proc.poll() is None, "the run ended before the moment under test"
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    no_traceback(err)
    assert err.splitlines()[-1] == "emoview: interrupted" or re.search(r"^\d+ frames \(interrupted\)", err, re.M), err
    written = recorded(err)
    if moment.startswith("while loading"):
        assert err.strip() == "emoview: interrupted" and not out.exists()  # nothing started, nothing half-made
    else:
        assert written is not None and 0 < written < 472, err
        assert decodable_frames(out) == written  # finalized, every reported frame in it


def test_signals_during_finalization_are_held_until_the_recording_is_complete(tmp_path, samples, face_model, random_model):
    """In-process and deterministic: SIGINT and SIGTERM arrive exactly while the sink finalizes."""
    from emoview.realtime.annotate import Overlay
    from emoview.realtime.classifier import EmotionClassifier
    from emoview.realtime.faces import FaceLandmarker
    from emoview.realtime.pipeline import Analyzer
    from emoview.realtime.recorder import VideoSink
    from emoview.realtime.session import Session
    from emoview.realtime.sources import VideoSource

    class SignalledSink(VideoSink):
        def close(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # both delivered (and held) before finalizing starts
            super().close()

    out = tmp_path / "out.mp4"
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with watchdog(), FaceLandmarker(face_model) as landmarker, VideoSource(samples / "single_face.mp4") as source:
        analyzer = Analyzer(EmotionClassifier(random_model), landmarker)
        sink = SignalledSink(out, source.fps)
        stats = Session(source, analyzer, Overlay(analyzer.labels), sink).run()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert stats.stopped_by == "interrupt"  # noticed, but only after finalizing
    assert stats.frames == stats.recorded == 72
    assert decodable_frames(out) == 72


# -- the input goes away ----------------------------------------------------------------------


def test_camera_stream_that_stops_mid_session_is_reported_and_the_recording_finalized(tmp_path, samples, face_model, random_model):
    # a file opened as a camera stream: the real CameraSource, which ends when the stream does
    out = tmp_path / "out.mp4"
    run = subprocess.run(
        cli("--camera", samples / "single_face.mp4", "--record", out, "--no-display", "--model", random_model, "--face-model", face_model),
        capture_output=True, text=True, timeout=120, cwd=REPO, env=clean_env(),
    )
    no_traceback(run.stderr)
    assert run.returncode == 2, run.stderr
    frames = int(re.search(r"^(\d+) frames \(end of input\), faces in \d+, .* dropped$", run.stderr, re.M).group(1))
    assert frames > 0 and recorded(run.stderr) == frames
    assert re.search(rf"^emoview: error: camera .* stopped sending frames after {frames} \(unplugged, or its stream ended\); "
                     rf"the {frames} frames recorded to .* are finalized; reconnect it and start again$", run.stderr, re.M)
    assert decodable_frames(out) == frames


# -- disk full ----------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str = "160k"):
    """A real full disk: a tiny tmpfs (root). Without root, a file-size limit (EFBIG) stands in."""
    path.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
        if mounted.returncode == 0:
            try:
                yield None
            finally:
                subprocess.run(["umount", "-l", str(path)], check=False)
            return
    limit = 160 * 1024

    def limit_file_size():  # Python ignores SIGXFSZ, so writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    yield limit_file_size


def test_disk_full_while_recording_is_one_clear_error_and_the_recording_stays_playable(tmp_path, samples, face_model, random_model):
    disk = tmp_path / "disk"
    with small_disk(disk) as preexec:
        out = disk / "out.mp4"
        run = subprocess.run(
            cli("--video", samples / "WolfgangLanger_Pexels.mp4", "--record", out, "--no-display",
                "--model", random_model, "--face-model", face_model),
            capture_output=True, text=True, timeout=180, cwd=REPO, env=clean_env(), preexec_fn=preexec,
        )
        no_traceback(run.stderr)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.splitlines()
        assert re.match(r"^\d+ frames \(stopped by an error\)", lines[0]), run.stderr
        error = re.fullmatch(
            r"emoview: error: recording to .*out\.mp4 failed after (\d+) frames \((No space left on device|File too large)\); "
            r"the recording up to the failure is kept and playable: free disk space or choose another --record path",
            lines[-1],
        )
        assert error, run.stderr
        kept = decodable_frames(out)
        assert 0 < kept <= int(error.group(1)) < 472


# -- a worker thread fails ----------------------------------------------------------------------


@pytest.fixture
def analyzer(face_model, random_model):
    from emoview.realtime.classifier import EmotionClassifier
    from emoview.realtime.faces import FaceLandmarker
    from emoview.realtime.pipeline import Analyzer

    with FaceLandmarker(face_model) as landmarker:
        yield Analyzer(EmotionClassifier(random_model), landmarker)


def worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.is_alive() and (t.name.startswith("read:") or t.name in ("record", "landmarks"))]


def test_a_failing_reader_thread_stops_the_run_with_what_it_analysed(tmp_path, samples, analyzer):
    import cv2

    from emoview.realtime.annotate import Overlay
    from emoview.realtime.errors import InputError
    from emoview.realtime.recorder import VideoSink
    from emoview.realtime.session import Session
    from emoview.realtime.sources import VideoSource

    class FailingCapture:  # the real capture, until the device starts failing
        def __init__(self, capture, after):
            self.capture, self.left = capture, after

        def read(self):
            self.left -= 1
            if self.left < 0:
                raise cv2.error("device read failed")
            return self.capture.read()

        def __getattr__(self, name):
            return getattr(self.capture, name)

    out = tmp_path / "out.mp4"
    with watchdog(), VideoSource(samples / "single_face.mp4") as source:
        source._capture = FailingCapture(source._capture, after=20)
        session = Session(source, analyzer, Overlay(analyzer.labels), VideoSink(out, source.fps))
        with pytest.raises(InputError, match=r"reading single_face\.mp4 failed after 21 frames \(error: device read failed\); "
                                             r"the frames before were analysed: check the video and try again"):
            session.run()
    assert session.stats.frames == 21 == session.stats.recorded  # the first frame comes from opening, then 20 reads
    assert decodable_frames(out) == 21
    assert not worker_threads()


def test_a_failing_writer_thread_stops_the_run_instead_of_hanging(tmp_path, samples, analyzer, monkeypatch):
    from emoview.realtime import recorder
    from emoview.realtime.annotate import Overlay
    from emoview.realtime.errors import InputError
    from emoview.realtime.session import Session
    from emoview.realtime.sources import VideoSource

    real_write = recorder._PyAVWriter.write
    calls = []

    def write(self, image):  # slow, so the queue fills and the pipeline waits on it; then ENOSPC
        calls.append(1)
        time.sleep(0.05)
        if len(calls) > 10:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, image)

    monkeypatch.setattr(recorder._PyAVWriter, "write", write)
    out = tmp_path / "out.mp4"
    with watchdog(), VideoSource(samples / "single_face.mp4") as source:
        session = Session(source, analyzer, Overlay(analyzer.labels), recorder.VideoSink(out, source.fps, queue_size=2))
        with pytest.raises(InputError, match=r"recording to .*out\.mp4 failed after 10 frames \(No space left on device\)"):
            session.run()
    assert 10 < session.stats.frames < 72  # stopped soon after the failure, not at the end of the input
    assert session.stats.recorded == 10
    assert decodable_frames(out) == 10  # the encoder was still flushed and the file finalized
    assert not worker_threads()


# -- training: an interrupted run resumes, an interrupted extraction leaves only whole entries --------

TINY_RECIPE = Path(__file__).parent / "data" / "tiny_ckplus.toml"


def checkpoint_epoch(run: Path) -> int:
    import torch

    try:  # last.pt is replaced atomically, so a read never sees half a file
        return int(torch.load(run / "last.pt", map_location="cpu", weights_only=False)["epoch"])
    except FileNotFoundError:
        return 0


def test_training_interrupted_then_killed_resumes_from_its_last_checkpoint(tmp_path, shared, face_model):
    pytest.importorskip("torch")
    recipe = TINY_RECIPE
    run = tmp_path / "run"
    command = cli("train", recipe, "--data", shared / "data", "--out", run, "--cache", tmp_path / "cache", "--limit", "120",
                  "--face-model", face_model, "--epochs", "5", "--set", "train.patience=20")

    def start():
        return subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=clean_env())

    # 1. Ctrl-C once the first epoch is saved
    first = start()
    wait_for(lambda: checkpoint_epoch(run) >= 1 or first.poll() is not None, timeout=300)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    no_traceback(err)
    assert first.returncode == 130 and err.splitlines()[-1] == "emoview: interrupted", err
    reached = checkpoint_epoch(run)
    assert 1 <= reached < 5

    # 2. SIGKILL (no clean-up at all) once it has saved one more epoch
    second = start()
    wait_for(lambda: checkpoint_epoch(run) > reached or second.poll() is not None, timeout=300)
    second.kill()
    _, err = second.communicate(timeout=60)
    assert f"resuming {run} after epoch {reached}" in err, err
    killed_at = checkpoint_epoch(run)
    assert reached < killed_at < 5

    # 3. the same command again finishes the run from there
    third = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=clean_env())
    no_traceback(third.stderr)
    assert third.returncode == 0, third.stderr
    assert f"resuming {run} after epoch {killed_at}" in third.stderr
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]  # every epoch once: nothing redone, nothing lost
    assert (run / "metrics.json").is_file() and (run / "best.pt").is_file()


def test_extraction_killed_mid_run_leaves_only_whole_entries_and_resumes(tmp_path, shared, face_model):
    from emoview.train.extract import dataset_files, entry_path, load_entry, settings_tag

    data = shared / "data" / "ckplus48"
    cache = tmp_path / "cache"
    command = cli("extract", data, "--cache", cache, "--workers", "1", "--limit", "200", "--face-model", face_model)
    entries = lambda: [p for p in (cache / settings_tag()).rglob("*.npz") if not p.name.startswith(".")]  # noqa: E731

    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=clean_env())
    wait_for(lambda: len(entries()) >= 40 or proc.poll() is not None, timeout=300)
    proc.kill()  # SIGKILL: whatever was being written stays as it was
    proc.communicate(timeout=60)
    kept = entries()
    assert 40 <= len(kept) < 200
    files = [path for _, path in dataset_files(data)[:200]]
    complete = 0
    for path in files:  # every item reads as whole or as not extracted, never as a broken entry
        entry = load_entry(cache, path)
        if entry is None:
            assert not entry_path(cache, path).exists()
            continue
        complete += 1
        assert entry["points"].shape == (478, 3) and entry["blendshapes"].shape == (52,) and entry["found"].shape == ()
    assert complete == len(kept)

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=clean_env())
    no_traceback(again.stderr)
    assert again.returncode == 0, again.stderr
    assert re.search(rf"200 items \({200 - complete} extracted in [\d.]+ s, {complete} cached\)", again.stderr), again.stderr
    assert all(load_entry(cache, path) is not None for path in files)


def test_analyze_stopped_by_repeated_sigterm_keeps_the_timeline_and_the_recording(tmp_path, samples, face_model, random_model):
    """`emoview analyze` under `kill`, twice: what was analysed is written, the recording is playable."""
    record = tmp_path / "annotated.mp4"
    proc = subprocess.Popen(
        cli("analyze", samples / "WolfgangLanger_Pexels.mp4", "--out", tmp_path, "--record", record,
            "--model", random_model, "--face-model", face_model),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=clean_env(),
    )
    try:
        wait_for(lambda: (record.exists() and record.stat().st_size > 20_000) or proc.poll() is not None)
        assert proc.poll() is None, "the run ended before the moment under test"
        for _ in range(3):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.03)
        _, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    no_traceback(err)
    assert proc.returncode == 130, err
    summary = json.loads((tmp_path / "timeline.json").read_text())["summary"]
    assert summary["stopped_by"] == "interrupt" and 0 < summary["frames_analysed"] < 472
    frames = decodable_frames(record)
    # the frame being handed over when the signal landed may be in the video but not yet in the timeline
    assert summary["frames_analysed"] <= frames <= summary["frames_analysed"] + 1
    if recorded(err) is not None:
        assert recorded(err) == frames
