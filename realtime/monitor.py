"""Rates and latencies over a sliding window: what the HUD shows and the benchmark reports."""

from __future__ import annotations

import time
from collections import deque

import numpy as np


class FPSMonitor:
    """Frames per second over the last `window` frames (a deque of arrival times)."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.perf_counter() if now is None else now)

    @property
    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Samples:
    """The last `limit` measurements of one quantity, with percentiles; bounded memory.

    Held in a float64 ring (8 bytes a value, where a deque of Python floats costs about 32): a
    session keeps a dozen of these, one value each per frame, so this is what a long run's memory
    grows by until `limit` values are held, and then it grows no more.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = max(1, limit)
        self._data = np.empty(min(self._limit, 1024), dtype=np.float64)  # doubles until `limit`
        self._count = 0
        self._next = 0
        self._last = 0.0

    def add(self, value: float) -> None:
        if self._count == len(self._data) < self._limit:
            grown = np.empty(min(self._limit, 2 * len(self._data)), dtype=np.float64)
            grown[: self._count] = self._data
            self._data = grown
        self._data[self._next] = value
        self._next = (self._next + 1) % self._limit
        self._count = min(self._count + 1, self._limit)
        self._last = float(value)

    def __len__(self) -> int:
        return self._count

    @property
    def last(self) -> float:
        return self._last

    @property
    def _values(self) -> np.ndarray:
        return self._data[: self._count]  # in no particular order once the ring wraps

    def percentile(self, q: float) -> float:
        return float(np.percentile(self._values, q)) if self._count else 0.0

    def summary(self) -> dict[str, float]:
        values = self._values
        if values.size == 0:
            return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(values.mean())}
