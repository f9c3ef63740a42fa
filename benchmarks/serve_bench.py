"""What `emoview serve` costs against the live analyzer, measured in one run on one machine.

    python benchmarks/serve_bench.py [--video FILE] [--seconds 30]

1. the live analyzer on the video, every frame as fast as possible (`emoview --video V --no-display`)
   against `emoview serve --video V --fast` with one viewer on /stream.mjpg and /events: fps and
   capture-to-annotated latency (p50) from each command's own summary line;
2. the live analyzer playing the video at 640x480 like a 30 fps camera (`--paced`) against
   `emoview serve --browser-camera` fed by headless Chromium's fake camera from the same frames
   at 640x480, 30 fps, over 127.0.0.1: frames per second answered, the server's latency (frame
   arrived -> annotated, from /events) and the page's round trip (POST /frame -> JSON answer).

Prints each number and the ratios serve/live, and the 1-minute load average before and after
(another process on the machine slows every number; the ratios are what compare).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOVIEW_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests"))

from serving import fake_camera_file, launch_chromium, serving  # noqa: E402

SUMMARY = re.compile(r"(\d+) frames \(([^)]*)\), faces in \d+, ([\d.]+) fps, latency p50 (\d+) ms")


def summary(stderr: str) -> dict:
    found = SUMMARY.search(stderr)
    if not found:
        raise SystemExit(f"no summary line in:\n{stderr}")
    return {"frames": int(found[1]), "fps": float(found[3]), "latency_p50_ms": float(found[4])}


def live(video: Path, *extra: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "emoview", "--video", str(video), "--no-display", *extra],
                         capture_output=True, text=True, timeout=600)
    return summary(run.stderr)


def drain(url: str, stop: threading.Event, keep: list | None = None) -> None:
    """A viewer: reads a stream until `stop`; collects /events' JSON into `keep`."""
    with urllib.request.urlopen(url, timeout=60) as response:
        while not stop.is_set():
            line = response.readline()
            if not line:
                return
            if keep is not None and line.startswith(b"data: "):
                keep.append(json.loads(line[6:]))


def viewers(server_url: str, stop: threading.Event, events: list) -> list[threading.Thread]:
    threads = [threading.Thread(target=drain, args=(server_url + "/stream.mjpg", stop), daemon=True),
               threading.Thread(target=drain, args=(server_url + "/events", stop, events), daemon=True)]
    for thread in threads:
        thread.start()
    return threads


def serve_video(video: Path, tmp: Path) -> dict:
    stop, events = threading.Event(), []
    with serving(tmp, "--video", video, "--fast") as server:
        viewers(server.url, stop, events)
        deadline = time.monotonic() + 600
        while not (events and events[-1]["state"] == "ended") and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
    return summary(server.stderr())


def serve_browser_camera(camera: Path, tmp: Path, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    stop, events = threading.Event(), []
    with serving(tmp, "--browser-camera") as server, sync_playwright() as p:
        browser = launch_chromium(p, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                  f"--use-file-for-fake-video-capture={camera}")
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("() => window.emoview.sent >= 30", timeout=300_000)  # warmed up
        viewers(server.url, stop, events)
        sent0, t0 = page.evaluate("() => window.emoview.sent"), time.monotonic()
        time.sleep(seconds)
        sent1, t1 = page.evaluate("() => window.emoview.sent"), time.monotonic()
        round_trips = page.evaluate("() => window.emoview.roundTripsMs.slice(-100)")
        stop.set()
        browser.close()
    latencies = [e["latency_ms"] for e in events if e.get("faces") is not None and e.get("latency_ms")]
    return {"frames": sent1 - sent0, "fps": (sent1 - sent0) / (t1 - t0), "latency_p50_ms": statistics.median(latencies),
            "round_trip_p50_ms": statistics.median(round_trips)}


def camera_like_video(video: Path, out: Path, size=(640, 480), fps: float = 30.0) -> Path:
    """The fake camera's frames as a 30 fps video, so the live analyzer gets exactly what the browser sends."""
    frames = cv2.VideoCapture(str(fake_camera_file(video, out.with_suffix(".mjpeg"), size)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    while True:
        ok, image = frames.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
    frames.release()
    return out


def line(name: str, served: dict, alone: dict) -> str:
    return (f"{name}: serve {served['fps']:.1f} fps, p50 {served['latency_p50_ms']:.0f} ms | live {alone['fps']:.1f} fps, "
            f"p50 {alone['latency_p50_ms']:.0f} ms | ratio fps {served['fps'] / alone['fps']:.2f}, "
            f"latency {served['latency_p50_ms'] / alone['latency_p50_ms']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SHARED / "data" / "samples" / "WolfgangLanger_Pexels.mp4"))
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the browser camera is measured")
    args = parser.parse_args()
    video = Path(args.video)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        camera_video = camera_like_video(video, tmp / "camera.avi")
        results = {
            "live_video": live(video),
            "serve_video": serve_video(video, tmp),
            "live_camera_640x480": live(camera_video, "--paced"),
            "serve_browser_camera_640x480": serve_browser_camera(camera_video.with_suffix(".mjpeg"), tmp, args.seconds),
        }
    results["load_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    print(json.dumps(results, indent=1))
    print(line(f"--video {video.name}, every frame", results["serve_video"], results["live_video"]))
    print(line("camera 640x480 at 30 fps", results["serve_browser_camera_640x480"], results["live_camera_640x480"])
          + f" | browser round trip p50 {results['serve_browser_camera_640x480']['round_trip_p50_ms']:.0f} ms")
    print(f"1-minute load average: {load_before:.2f} before, {results['load_1m']['after']:.2f} after, on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
