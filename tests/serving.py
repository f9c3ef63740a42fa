"""Helpers for the `emoview serve` tests: a real server in a subprocess, and what it streams.

The server runs as a user runs it (`python -m emoview serve ...`) on a free port of 127.0.0.1, is
waited for by polling, and is always stopped with SIGTERM. Timeouts are generous: the tests share
two cores with whatever else the machine runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

START_TIMEOUT_S = 180.0
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def require(*modules: str, chromium: bool = False) -> None:
    """Skip on a developer machine without the serve tests' tools; fail in CI, which installs them (.ci/run)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if chromium and not os.path.exists(CHROMIUM):
        missing.append("Debian's chromium")
    if missing:
        message = f"needs {', '.join(missing)}: pip install -e '.[web]' playwright; apt-get install chromium (as .ci/run does)"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM, as systemd or docker would; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise AssertionError(f"emoview serve did not stop within {timeout:.0f} s of SIGTERM:\n{self.stderr()}")


@contextlib.contextmanager
def serving(tmp_path: Path, *args, record_dir: Path | None = None):
    """`with serving(tmp_path, "--video", path, ...) as server:` a ready server; stopped (SIGTERM) at the end."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    record_dir = record_dir or tmp_path
    command = [sys.executable, "-m", "emoview", "serve", *map(str, args), "--port", str(port), "--record-dir", str(record_dir)]
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"emoview serve exited with {server.proc.returncode}:\n{server.stderr()}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(server.url + "/session.json", timeout=10) as response:
                if response.status == 200:
                    return
        time.sleep(0.3)
    raise AssertionError(f"emoview serve was not ready within {START_TIMEOUT_S:.0f} s:\n{server.stderr()}")


def request(url: str, data: bytes | None = None, method: str | None = None, headers: dict | None = None, timeout: float = 60.0):
    """(status, body bytes, headers) for any status, 4xx and 5xx included."""
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def get_json(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, dict]:
    status, body, _ = request(url, data, method)
    return status, json.loads(body)


def mjpeg_frames(url: str, count: int, timeout: float = 60.0) -> list[np.ndarray]:
    """The first `count` JPEGs of a multipart/x-mixed-replace stream, decoded."""
    frames = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        kind = response.headers["Content-Type"]
        assert kind.startswith("multipart/x-mixed-replace"), kind
        boundary = b"--" + kind.split("boundary=")[1].encode()
        while len(frames) < count:
            line = response.readline()
            if not line:
                break
            if line.strip() != boundary:
                continue
            headers = {}
            while (line := response.readline().strip()):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            assert headers["content-type"] == "image/jpeg"
            data = response.read(int(headers["content-length"]))
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None, "a part of the stream is not a JPEG"
            frames.append(image)
    return frames


def events(url: str, count: int, until=None, timeout: float = 120.0) -> list[dict]:
    """Server-sent events as dicts: the first `count`, or up to the first for which `until(event)` is true."""
    got = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        while time.monotonic() < deadline:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                got.append(json.loads(line[6:]))
                if (until is None and len(got) >= count) or (until is not None and until(got[-1])):
                    return got
    if until is not None:
        raise AssertionError(f"no event matched within {timeout:.0f} s; last: {got[-1:]}")
    return got


def wait_for(condition, timeout: float = 120.0, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def sample_jpeg(path: Path, frame: int = 0, size: tuple[int, int] | None = None) -> bytes:
    """One frame of a sample video as JPEG bytes, optionally resized."""
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, image = capture.read()
    capture.release()
    assert ok
    if size:
        image = cv2.resize(image, size)
    return cv2.imencode(".jpg", image)[1].tobytes()


def h264_frames(path: Path) -> tuple[str, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in container.decode(stream))


def launch_chromium(playwright, *extra: str):
    """Debian's chromium, headless, through Playwright (never `playwright install`: it downloads browsers)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra])


def fake_camera_file(video: Path, out: Path, size=(640, 480)) -> Path:
    """The sample as an MJPEG file for Chromium's fake camera, letterboxed to `size` (it plays it in a loop)."""
    capture = cv2.VideoCapture(str(video))
    with open(out, "wb") as f:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            scale = min(size[0] / image.shape[1], size[1] / image.shape[0])
            resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
            canvas = np.zeros((size[1], size[0], 3), np.uint8)
            y, x = (size[1] - resized.shape[0]) // 2, (size[0] - resized.shape[1]) // 2
            canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
            f.write(cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    capture.release()
    return out
