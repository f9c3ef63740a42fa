"""Calm, honest labels: probabilities are averaged over time and the label needs a margin to change.

The average is exponential with a time constant in seconds, not frames, so a face looks equally
smooth at 10 and 60 fps. The margin (hysteresis) stops the label flickering between two classes
whose probabilities are close.
"""

from __future__ import annotations

import math

import numpy as np


class ProbabilitySmoother:
    def __init__(self, time_constant_s: float = 0.25, margin: float = 0.08) -> None:
        self.time_constant_s = time_constant_s
        self.margin = margin
        self.probabilities: np.ndarray | None = None
        self.label_index: int | None = None
        self._last_ms: float | None = None

    def update(self, probabilities: np.ndarray, timestamp_ms: float) -> np.ndarray:
        """Blend in a new probability vector; returns the smoothed one."""
        p = np.asarray(probabilities, dtype=np.float32)
        if self.probabilities is None or self.time_constant_s <= 0:
            self.probabilities = p.copy()
        else:
            dt = max((timestamp_ms - self._last_ms) / 1000.0, 0.001)
            alpha = 1.0 - math.exp(-dt / self.time_constant_s)
            self.probabilities += alpha * (p - self.probabilities)
        self._last_ms = timestamp_ms
        self._update_label()
        return self.probabilities

    def _update_label(self) -> None:
        best = int(np.argmax(self.probabilities))
        if self.label_index is None:
            self.label_index = best
        elif best != self.label_index and self.probabilities[best] >= self.probabilities[self.label_index] + self.margin:
            self.label_index = best
