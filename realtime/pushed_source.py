"""A live source whose frames are handed in from outside: a browser's camera, one JPEG per request.

It behaves like a camera: only the newest frame is kept (a frame pushed while the previous one
still waits replaces it, and counts as dropped), timestamps run from when the source opened, and
the latency clock starts when a frame is pushed. `push` returns the frame's timestamp, so whoever
pushed it can wait for its result (or the next one, if it was dropped).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from emoview.realtime.sources import Source


class PushedSource(Source):
    kind = "browser camera"
    live = True

    def __init__(self, name: str = "browser camera", fps: float = 15.0) -> None:
        self._cond = threading.Condition()
        self._pending: tuple[np.ndarray, float, float] | None = None  # image, timestamp_ms, pushed_at
        self._ended = False
        self._opened_at = time.perf_counter()
        self._last_ms = -1.0
        self._pushed_at = 0.0  # when the frame being read was pushed: its latency starts there
        self.replaced = 0  # frames pushed while another still waited: dropped before analysis
        self.ended_early = False  # never: it ends when the session stops
        super().__init__(name, fps, latest_only=True)

    def push(self, image: np.ndarray) -> float:
        """Hands in a BGR frame; returns its timestamp (ms). Raises RuntimeError once the source has ended."""
        now = time.perf_counter()
        with self._cond:
            if self._ended:
                raise RuntimeError("the session has ended")
            # at least 1 ms apart: the landmarker takes whole milliseconds and refuses a repeated one
            timestamp_ms = max((now - self._opened_at) * 1000.0, self._last_ms + 1.0)
            self._last_ms = timestamp_ms
            if self._pending is not None:
                self.replaced += 1
            self._pending = (image, timestamp_ms, now)
            self._cond.notify_all()
        return timestamp_ms

    def end(self) -> None:
        """No more frames: the reader thread (and so the session) sees the end of input."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _read(self) -> tuple[np.ndarray, float] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending is not None or self._ended)
            if self._ended:
                return None
            image, timestamp_ms, self._pushed_at = self._pending
            self._pending = None
        return image, timestamp_ms

    def _timed_read(self):
        frame = super()._timed_read()
        if frame is not None:
            frame.captured_at = self._pushed_at  # latency from the moment the frame arrived
        return frame

    @property
    def dropped(self) -> int:
        return self.replaced + super().dropped

    def close(self) -> None:
        self.end()  # first: a reader waiting for a frame must wake before the feed joins it
        super().close()
