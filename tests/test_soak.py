"""Long-session memory, the fast parts: per-face state and run statistics stay bounded.

The full soak (>= 20,000 real frames, RSS start/middle/end) is `benchmarks/soak.py`: it takes
minutes, so it is a script, not a test. These tests check the structures that could grow with
the length of a run, in-process and in a second or two.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from emoview.realtime.faces import Face
from emoview.realtime.monitor import Samples
from emoview.realtime.tracking import FaceTracker

FPS = 30.0


def crowd(index: int, size: int) -> list[Face]:
    """`size` faces side by side; consecutive crowds stand in different halves of the frame."""
    points, shapes = np.zeros((478, 3), np.float32), np.zeros(52, np.float32)
    x0 = 0 if index % 2 == 0 else 1000
    return [Face(points, shapes, (x0 + 150 * k, 100, x0 + 150 * k + 100, 200)) for k in range(size)]


def test_many_faces_coming_and_going_leave_no_per_face_state():
    tracker = FaceTracker(window=15, features=64, max_missing_s=0.5)
    held_max, appearances = 0, 0
    tracemalloc.start()
    try:
        for frame in range(9000):  # five minutes at 30 fps: a new group of 1-5 faces every 1.5 s, each for 1 s
            group, phase = divmod(frame, 45)
            faces = crowd(group, 1 + group % 5) if phase < 30 else []
            appearances += len(faces) if phase == 0 else 0
            for track in tracker.update(faces, frame * 1000.0 / FPS):
                track.window.push(np.ones(64, np.float32))
            held_max = max(held_max, len(tracker.tracks))  # (no list: the test itself must not grow)
            if frame == 24 * 45 + 44:  # same point of the cycle as the last frame: the same faces held
                settled, _ = tracemalloc.get_traced_memory()
        grown = tracemalloc.get_traced_memory()[0] - settled  # frame 8999: group 199, same place in the cycle
    finally:
        tracemalloc.stop()
    assert held_max <= 5  # a group is forgotten 0.5 s after it leaves, before the next one arrives
    assert next(tracker._ids) - 1 == appearances == 200 * 3  # every appearance was a new face...
    for frame in range(9000, 9000 + 20):  # ...and once nobody is left, nothing is held
        tracker.update([], frame * 1000.0 / FPS)
    assert tracker.tracks == {}
    assert grown < 4 * 1024, f"{grown} bytes more after 7,875 frames of faces coming and going"


def test_run_statistics_stop_growing_at_their_limit():
    samples = Samples(limit=5_000)
    values = np.random.default_rng(1).random(60_000)
    for value in values:
        samples.add(value)
    assert len(samples) == 5_000 and samples._data.nbytes == 5_000 * 8
    assert samples.last == values[-1]
    assert samples.percentile(50) == np.percentile(values[-5_000:], 50)  # exactly the last `limit` values
