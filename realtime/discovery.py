"""The video discovery pass: the tiled face search on a recent frame, in its own thread.

A tiled search of a 1080p frame takes a hundred milliseconds or more (tens of detector calls), far
more than a frame's budget, so it never runs in the frame loop. The loop `offer`s a frame when one
is due (every `interval_ms` of media time); the thread keeps only the newest offered frame (a
latest-frame slot: an offer made while it searches replaces the waiting one, nothing queues), and
the loop `take`s the newest finished result when there is one, without waiting. A small face that
appears is found within an interval plus a search, about half a second, and then tracked every
frame by the caller. The thread runs at a lower priority than the frame loop (its work is
background work), stops on `close`, and hands its errors to the loop, which re-raises them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from emoview.realtime.face_search import Box, FaceSearch
from emoview.realtime.feed import lower_thread_priority

INTERVAL_MS = 400.0  # media time between searches: found within about half a second of appearing


@dataclass(frozen=True)
class Found:
    """The boxes of one search, and the timestamp of the frame searched."""

    timestamp_ms: float
    boxes: list[Box]


class Discovery:
    """Searches offered frames for faces in a background thread; use as a context manager.

    `after_search(found)` runs in the thread after each search, its result already out: where the
    caller readies what the found faces will need (a landmarker each) without stalling its loop.
    """

    def __init__(self, search: FaceSearch, interval_ms: float = INTERVAL_MS,
                 after_search: Callable[[Found], None] | None = None) -> None:
        self._search = search
        self.interval_ms = interval_ms
        self._after = after_search
        self._cond = threading.Condition()
        self._pending: tuple[np.ndarray, float] | None = None
        self._result: Found | None = None
        self._error: BaseException | None = None
        self._stopping = False
        self._busy = False
        self._last_offer_ms = float("-inf")
        self.searches = 0
        self._thread = threading.Thread(target=self._run, name="discovery", daemon=True)
        self._thread.start()

    def due(self, timestamp_ms: float) -> bool:
        """Whether a frame at this time should be offered (also true again after a seek back)."""
        return not (0 <= timestamp_ms - self._last_offer_ms < self.interval_ms)

    def offer(self, image: np.ndarray, timestamp_ms: float) -> None:
        """Hand over a frame to search (kept by reference: frames are not written to once decoded)."""
        with self._cond:
            self._raise_error()
            self._last_offer_ms = timestamp_ms
            self._pending = (image, timestamp_ms)
            self._cond.notify_all()

    def take(self) -> Found | None:
        """The newest search result not taken yet, or None; never waits."""
        with self._cond:
            self._raise_error()
            found, self._result = self._result, None
            return found

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no frame is waiting or being searched (tests; a caller that may wait)."""
        with self._cond:
            return self._cond.wait_for(lambda: (self._pending is None and not self._busy) or self._stopping, timeout)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        lower_thread_priority()
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                    if self._stopping:
                        return
                    (image, timestamp_ms), self._pending = self._pending, None
                    self._busy = True
                try:
                    found = Found(timestamp_ms, self._search.find(image))
                    with self._cond:
                        self._result = found
                        self.searches += 1
                    if self._after is not None:
                        self._after(found)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the frame loop, which re-raises it
            with self._cond:
                self._error = exc
                self._busy = False
                self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> "Discovery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
