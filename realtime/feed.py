"""A producer thread and its consumer, joined by a small bounded buffer.

Two policies, one mechanism. Lossless (files): the producer waits when the buffer is full, so every
frame is analysed and decoding still runs ahead of analysis. Latest-only (cameras): a full buffer
drops its oldest frame, so a slow consumer always gets the newest picture and never a backlog.
Errors in the producer reach the consumer instead of dying silently with the thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


BACKGROUND_NICE = 5  # for threads that fill a buffer ahead of need: measured, +2-3 % end-to-end fps


def lower_thread_priority(steps: int = BACKGROUND_NICE) -> None:
    """Lower the calling thread's CPU priority by `steps` nice levels (Linux sets it per thread;
    elsewhere this does nothing). For threads that work ahead into a buffer (decoding, encoding):
    MediaPipe runs its inference on threads of its own, and on two cores a decoder competing with
    them as an equal slows every frame's landmarks, the pipeline's bottleneck."""
    if steps <= 0 or sys.platform != "linux":
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))


class Feed(Generic[T]):
    """Runs `produce` (returns the next item, or None at the end) in a thread; iterate to consume."""

    def __init__(self, produce: Callable[[], T | None], latest_only: bool, depth: int = 4, name: str = "feed",
                 placed: Callable[[], None] | None = None) -> None:
        self._produce = produce
        self._placed = placed  # runs first in the producer thread: its priority (`lower_thread_priority`), its core
        self._latest_only = latest_only
        self._items: deque[T] = deque()
        self._depth = 1 if latest_only else max(1, depth)
        self._cond = threading.Condition()
        self._stopping = False
        self._finished = False
        self._error: BaseException | None = None
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Feed[T]":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            if self._placed is not None:
                self._placed()
            while True:
                with self._cond:
                    if self._stopping:
                        return
                item = self._produce()
                if item is None:
                    return
                with self._cond:
                    while not self._latest_only and len(self._items) >= self._depth and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    if self._latest_only and len(self._items) >= self._depth:
                        self._items.popleft()
                        self.dropped += 1
                    self._items.append(item)
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The next item; None at the end of input or when `timeout` passes with nothing new."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._finished, timeout=timeout):
                return None
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return None

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._finished and not self._items

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._items.clear()
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
