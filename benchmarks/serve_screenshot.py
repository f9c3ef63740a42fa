"""The README's picture of `emoview serve`: the page with the sample video, in headless Chromium.

    python benchmarks/serve_screenshot.py [--video FILE] [--out docs/serve.png] [--seconds 20]

Starts `emoview serve --video FILE --loop` on a free port, opens the page in Debian's chromium
through Playwright (never `playwright install`), waits until the charts hold --seconds of history,
and saves the screenshot. Uses the same server harness as the tests (tests/serving.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOVIEW_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests"))

from serving import launch_chromium, serving  # noqa: E402

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SHARED / "data" / "samples" / "WolfgangLanger_Pexels.mp4"))
    parser.add_argument("--out", default=str(REPO / "docs" / "serve.png"))
    parser.add_argument("--seconds", type=float, default=20.0, help="history the charts should show first (video time)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp), "--video", args.video, "--loop") as server, sync_playwright() as p:
        page = launch_chromium(p).new_page(viewport={"width": 1280, "height": 520})
        page.goto(server.url + "/")
        page.wait_for_function(
            f"""() => {{
                const face = [...window.emoview.faces.values()][0];
                return face && face.history.length > 1 && face.history.at(-1).t - face.history[0].t >= {args.seconds};
            }}""",
            timeout=int((args.seconds * 10 + 120) * 1000),
        )
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
