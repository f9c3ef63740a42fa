"""A fixed-size window of the most recent feature frames, readable without copying.

Each frame is written twice, at i and i + size, in a buffer of twice the window: the last `size`
frames are then always one contiguous slice, in time order, and memory never grows.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    def __init__(self, size: int, features: int) -> None:
        if size < 1:
            raise ValueError(f"window must be at least 1 frame, not {size}")
        self.size = size
        self._data = np.zeros((2 * size, features), dtype=np.float32)
        self._next = 0  # where the next frame goes, in [0, size)
        self.count = 0  # frames pushed so far, capped at size

    def push(self, frame: np.ndarray) -> None:
        self._data[self._next] = frame
        self._data[self._next + self.size] = frame
        self._next = (self._next + 1) % self.size
        self.count = min(self.count + 1, self.size)

    def replace_last(self, frame: np.ndarray) -> None:
        """Overwrite the newest frame (a fused model's embedding, known only after the model ran)."""
        if self.count == 0:
            raise IndexError("replace_last on an empty ring buffer")
        last = (self._next - 1) % self.size
        self._data[last] = frame
        self._data[last + self.size] = frame

    def window(self) -> np.ndarray:
        """The last min(count, size) frames, oldest first: a view, valid until the next push."""
        end = self._next + self.size
        return self._data[end - self.count : end]

    def clear(self) -> None:
        self._next = 0
        self.count = 0
