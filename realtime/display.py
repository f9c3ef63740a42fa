"""A window on screen, only where one can open: cv2.imshow without a display kills the process.

OpenCV's GUI aborts (no exception) when it cannot reach a display, so before the first imshow we
check the environment and then probe a window in a child process; if either fails, the run goes
on without a window and says so.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts")
QUIT_KEYS = {ord("q"), ord("Q"), 27}  # q or Esc
_PROBE = "import cv2; cv2.namedWindow('emoview-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


def display_available() -> bool:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


class Window:
    """One resizable window; `show` returns False once the user asks to stop (q, Esc, closed)."""

    def __init__(self, title: str = "emoview") -> None:
        self.title = title
        # OpenCV's Qt build ships no fonts and complains on every start unless pointed at some
        fonts = next((d for d in FONT_DIRS if os.path.isdir(d)), None)
        if fonts:
            os.environ.setdefault("QT_QPA_FONTDIR", fonts)
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        self._shown = False

    def show(self, image: np.ndarray) -> bool:
        cv2.imshow(self.title, image)
        if not self._shown:
            self._shown = True
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
