"""A latest-value slot: one writer replaces the value, any number of readers wait for a newer one.

What several viewers of one session share: each reader remembers the sequence number it last saw
and gets the newest value, never a queue of old ones, so a slow reader skips values and memory
never grows with the number or speed of readers.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Slot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: T | None = None
        self._seq = 0
        self._closed = False

    def put(self, value: T) -> int:
        with self._cond:
            self._value = value
            self._seq += 1
            self._cond.notify_all()
            return self._seq

    def get(self) -> tuple[int, T | None]:
        with self._cond:
            return self._seq, self._value

    def wait_newer(self, seen: int, timeout: float | None = None) -> tuple[int, T | None]:
        """The newest (seq, value) once seq > `seen`; the current one if `timeout` passes or the slot closes."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seen or self._closed, timeout=timeout)
            return self._seq, self._value

    def close(self) -> None:
        """Wakes every waiting reader for good: the session is over."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
