"""`emoview serve` in a real browser, offline: Debian's Chromium driven by Playwright, headless.

The page is checked as a person sees it: real frames in the <img>, bars and charts that move
with the sample's emotions, a recording made by clicking its button, the timeline downloads, and
(`--browser-camera`) Chromium's fake camera playing a sample video into getUserMedia.
"""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from serving import fake_camera_file, h264_frames, launch_chromium, require, serving, wait_for

SLOW_MS = 180_000  # a loaded two-core machine: the first frames can take a while


@pytest.fixture
def browser():
    require("starlette", "uvicorn", "playwright", chromium=True)
    from playwright.sync_api import sync_playwright  # pip install playwright; never `playwright install`

    with sync_playwright() as playwright:
        yield lambda *extra: launch_chromium(playwright, *extra)


def bar_values(page) -> list[float]:
    return page.evaluate("() => [...document.querySelectorAll('.face .bar')].map((b) => parseFloat(b.dataset.value))")


def chart_spread(page) -> float:
    """Largest range (max - min) of one emotion's smoothed probability over the first face's chart."""
    return page.evaluate("""() => {
        const face = [...window.emoview.faces.values()][0];
        let best = 0;
        for (let i = 0; i < window.emoview.session.labels.length; i++) {
            const values = face.history.map((point) => point.p[i]);
            best = Math.max(best, Math.max(...values) - Math.min(...values));
        }
        return best;
    }""")


def shown_frame(page) -> np.ndarray:
    """What the <img> shows right now, as pixels."""
    png = page.locator("#stream").screenshot()
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def check_page_moves_with_the_video(page):
    """Bars, chart data and chart pixels all change as the faces' emotions change."""
    page.wait_for_function("() => window.emoview.faces.size > 0", timeout=SLOW_MS)
    labels = page.evaluate("() => window.emoview.session.labels")
    first_bars = bar_values(page)
    assert len(first_bars) == len(labels) and sum(first_bars) == pytest.approx(1, abs=0.02)
    first_chart = page.evaluate("() => document.querySelector('.chart').toDataURL()")
    wait_for(lambda: max(abs(a - b) for a, b in zip(bar_values(page), first_bars)) > 0.1, 180, what="the bars to change")
    wait_for(lambda: chart_spread(page) > 0.1, 180, what="the chart's lines to move")
    assert page.evaluate("() => document.querySelector('.chart').toDataURL()") != first_chart


def test_page_shows_live_frames_bars_chart_records_and_downloads(tmp_path, samples, face_model, browser):
    with serving(tmp_path, "--video", samples / "WolfgangLanger_Pexels.mp4", "--loop", "--face-model", face_model) as server:
        page = browser().new_page(viewport={"width": 1280, "height": 760}, accept_downloads=True)
        page.goto(server.url + "/")
        page.wait_for_function("() => document.getElementById('stream').naturalWidth === 640", timeout=SLOW_MS)
        frame = shown_frame(page)
        assert frame.shape[1] > 300 and frame.std() > 20  # a real picture in the <img>, not a blank box

        check_page_moves_with_the_video(page)
        assert page.locator("#fps").inner_text() != "–" and float(page.locator("#fps").inner_text()) > 0
        assert page.locator("#face-count").inner_text() == "1"

        page.click("#record")
        page.wait_for_selector("#record.recording", timeout=60_000)
        start = page.evaluate("() => window.emoview.last.frame")
        page.wait_for_function(f"() => window.emoview.last.frame > {start + 40}", timeout=SLOW_MS)
        page.click("#record")
        page.wait_for_function("() => document.getElementById('message').textContent.startsWith('saved')", timeout=SLOW_MS)
        saved = re.search(r"saved (\d+) frames to (\S+) on the server", page.locator("#message").inner_text())
        path = Path(saved.group(2))
        assert path.parent == tmp_path and h264_frames(path) == ("h264", int(saved.group(1))) and int(saved.group(1)) > 0

        with page.expect_download() as download:
            page.click("text=timeline.json")
        timeline = json.loads(Path(download.value.path()).read_text())
        assert timeline["seconds"] >= 2 and timeline["faces"]
        with page.expect_download() as download:
            page.click("text=timeline.csv")
        assert Path(download.value.path()).read_text().startswith("face,t,present,label,frames,p_")

        page.screenshot(path=str(tmp_path / "serve.png"))
    assert server.proc.returncode == 130


# Counts /frame requests in flight, before the page's own script runs: the page must never have two.
COUNT_IN_FLIGHT = """
window.inFlight = 0; window.maxInFlight = 0;
const realFetch = window.fetch;
window.fetch = async (url, options) => {
  if (url !== "/frame") return realFetch(url, options);
  window.maxInFlight = Math.max(window.maxInFlight, ++window.inFlight);
  try { return await realFetch(url, options); } finally { window.inFlight--; }
};
"""


def test_browser_camera_sends_frames_and_shows_results(tmp_path, samples, face_model, browser):
    camera = fake_camera_file(samples / "WolfgangLanger_Pexels.mp4", tmp_path / "camera.mjpeg")
    with serving(tmp_path, "--browser-camera", "--face-model", face_model) as server:
        launched = browser("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                           f"--use-file-for-fake-video-capture={camera}")
        page = launched.new_page(viewport={"width": 1280, "height": 760})
        page.add_init_script(COUNT_IN_FLIGHT)
        page.goto(server.url + "/")
        page.wait_for_function("() => window.emoview.sent >= 10", timeout=SLOW_MS)
        page.wait_for_function("() => document.getElementById('stream').naturalWidth === 640", timeout=SLOW_MS)
        assert page.evaluate("() => document.getElementById('stream').naturalHeight") == 480
        assert shown_frame(page).std() > 20
        check_page_moves_with_the_video(page)

        bad = page.request.post(server.url + "/frame", data=b"not a jpeg", headers={"Content-Type": "image/jpeg"})
        assert bad.status == 415 and "not an image" in bad.json()["error"]
        sent = page.evaluate("() => window.emoview.sent")
        page.wait_for_function(f"() => window.emoview.sent > {sent + 10}", timeout=SLOW_MS)  # the session goes on
        assert page.evaluate("() => window.maxInFlight") == 1
        assert page.evaluate("() => window.emoview.errors") == 0
        page.screenshot(path=str(tmp_path / "serve-browser-camera.png"))
    assert server.proc.returncode == 130
