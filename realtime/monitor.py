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
    """The last `limit` measurements of one quantity, with percentiles; bounded memory."""

    def __init__(self, limit: int = 100_000) -> None:
        self._values: deque[float] = deque(maxlen=limit)

    def add(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def last(self) -> float:
        return self._values[-1] if self._values else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self._values, float), q)) if self._values else 0.0

    def summary(self) -> dict[str, float]:
        values = np.fromiter(self._values, float)
        if values.size == 0:
            return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(values.mean())}
