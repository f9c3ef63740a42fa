"""A window on screen, only where one can open: cv2.imshow without a display kills the process.

OpenCV's GUI aborts (no exception) when it cannot reach a display, so before the first imshow we
check the environment and then probe a window in a child process; if either fails, the run goes
on without a window and says so. `StillsWindow` keeps each image up until a key (or a few seconds)
and can page back through the last ones shown.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque

import cv2
import numpy as np

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts")
QUIT_KEYS = {ord("q"), ord("Q"), 27}  # q or Esc
# waitKeyEx codes differ by GUI backend: Qt, GTK, Windows
NEXT_KEYS = {ord(" "), 0x1000014, 65363, 2555904}  # space, right arrow
PREVIOUS_KEYS = {0x1000012, 65361, 2424832}  # left arrow
HISTORY = 50  # images that left arrow can go back to, kept PNG-encoded (~1 MB each at 1080p)
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


class StillsWindow(Window):
    """Each image stays until space or right arrow (next), left arrow (previous), q or Esc (quit),
    or for `seconds` when given. Paging back shows the annotated images already made (the last
    HISTORY of them), so the pipeline only ever moves forward."""

    def __init__(self, title: str = "emoview", seconds: float | None = None) -> None:
        super().__init__(title)
        self.seconds = seconds
        self._history: deque[np.ndarray] = deque(maxlen=HISTORY)
        self._count = 0  # images shown so far

    def show(self, image: np.ndarray) -> bool:
        ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        self._history.append(encoded if ok else None)
        self._count += 1
        position = len(self._history) - 1
        shown = image
        while True:
            cv2.imshow(self.title, shown)
            number = self._count - (len(self._history) - 1 - position)
            cv2.setWindowTitle(self.title, f"{self.title} - image {number}")  # which one, when paging
            if not self._shown:
                self._shown = True
                cv2.resizeWindow(self.title, shown.shape[1], shown.shape[0])
            action = self._wait()
            if action == "quit":
                return False
            if action == "previous":
                position = max(position - 1, 0)
            elif position == len(self._history) - 1:  # next (or time is up) at the newest image
                return True
            else:
                position += 1
            kept = self._history[position]
            shown = cv2.imdecode(kept, cv2.IMREAD_COLOR) if kept is not None else image

    def _wait(self) -> str:
        """'next', 'previous' or 'quit': a key, the window closed, or `seconds` gone by."""
        deadline = None if self.seconds is None else time.monotonic() + self.seconds
        while deadline is None or time.monotonic() < deadline:
            key = cv2.waitKeyEx(50)
            if key != -1:
                if key & 0xFF in QUIT_KEYS and key < 256:
                    return "quit"
                if key in NEXT_KEYS:
                    return "next"
                if key in PREVIOUS_KEYS:
                    return "previous"
            try:
                if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    return "quit"
            except cv2.error:
                return "quit"
        return "next"
