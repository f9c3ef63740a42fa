"""A core of its own for the landmarker while a pipeline runs (Linux; elsewhere nothing changes).

MediaPipe runs a landmarker's graph on threads it starts when the landmarker is made, and hands
each frame from one of them to the next. In the threaded pipeline our own threads (the reader,
features, model, overlay) wake up many times a frame; when one of them lands on the core a graph
thread was using, the graph, which is the pipeline's bottleneck, waits its turn. Measured on this
project's 2-core machine, 640x360 sample, one face, end-to-end fps / bare landmarker fps (`emoview
bench --repeat 3`, eight runs each): 0.83-0.90, median 0.86, as the OS places threads; 0.95-1.00,
median 0.98, with the graph's threads and the thread that waits on them on one core and ours on
the others. Ours pinned but the graph left free (four runs): 0.77-0.85, no gain.

A worker process of a batch calls `share_cores()`: its siblings run graphs of their own, and
graphs of two workers pinned to the same core would halve both.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterable, Iterator

_shared = False


def share_cores() -> None:
    """This process is one of several workers on the machine: leave every thread where the OS puts it."""
    global _shared
    _shared = True


def _threads() -> set[int]:
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:  # not Linux
        return set()


@contextmanager
def threads_started() -> Iterator[set[int]]:
    """The ids of the threads started in this process during the block (filled in at its end)."""
    before = _threads()
    started: set[int] = set()
    try:
        yield started
    finally:
        started |= _threads() - before


class CoreSplit:
    """Within the block: `graph_threads` on the last usable core, the calling thread (and every thread
    it starts meanwhile, which inherit its cores) on the others, except a thread that `join_graph`s.
    Afterwards the graph and the calling thread get back the cores the calling thread had. Nothing
    happens with fewer than two cores or after `share_cores()`."""

    def __init__(self, graph_threads: Iterable[int]) -> None:
        self.graph_threads = tuple(graph_threads)
        self.cores: tuple[set[int], set[int]] | None = None  # (graph's, ours) while split

    def __enter__(self) -> "CoreSplit":
        if _shared or not self.graph_threads or not hasattr(os, "sched_setaffinity"):
            return self
        self._before = os.sched_getaffinity(0)
        if len(self._before) < 2:
            return self
        last = max(self._before)
        graph, ours = {last}, self._before - {last}
        try:
            for tid in self.graph_threads:
                os.sched_setaffinity(tid, graph)
            os.sched_setaffinity(0, ours)
        except OSError:  # a thread already gone, or a sandbox that forbids it: leave placement to the OS
            self._restore()
            return self
        self.cores = (graph, ours)
        return self

    def join_graph(self) -> None:
        """Moves the calling thread onto the graph's core: for the thread that hands frames to the
        graph and waits for its answer, so the answer is read at once instead of waiting for a
        core that the other stages keep busy (left with them, its one run gave 0.79)."""
        if self.cores is not None:
            try:
                os.sched_setaffinity(0, self.cores[0])
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        if self.cores is not None:
            self._restore()
            self.cores = None

    def _restore(self) -> None:
        for tid in (*self.graph_threads, 0):
            try:
                os.sched_setaffinity(tid, self._before)
            except OSError:
                pass  # that thread has ended
