"""The run loop shared by the live analyzer, `analyze` and `bench`: source -> analyzer -> overlay ->
window and recording, with clean stops.

Whatever ends a run (end of input, q/Esc, Ctrl-C, SIGTERM, an error in any thread), the source is
stopped and the recording finalized before control returns; from then on further Ctrl-C or SIGTERM
are held back (`realtime/signals.py`) so a second impatient Ctrl-C cannot leave a broken file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import cv2

from emoview.realtime.annotate import Overlay
from emoview.realtime.cores import CoreSplit
from emoview.realtime.display import Window
from emoview.realtime.feed import Feed
from emoview.realtime.monitor import FPSMonitor, Samples
from emoview.realtime.pipeline import STAGES, Analyzer, FrameResult
from emoview.realtime.recorder import VideoSink
from emoview.realtime.signals import handling_stop_signals
from emoview.realtime.sources import Source


@dataclass
class RunStats:
    frames: int = 0
    frames_with_faces: int = 0
    faces_found: int = 0  # summed over frames: faces per frame = faces_found / frames
    elapsed_s: float = 0.0
    stopped_by: str = "end"  # end | user | interrupt
    recorded: int = 0
    dropped: int = 0
    latency: Samples = field(default_factory=Samples)  # capture -> annotated frame, ms
    stages: dict[str, Samples] = field(default_factory=lambda: {stage: Samples() for stage in ("decode", *STAGES, "overlay", "record")})

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def one_opencv_thread() -> int:
    """Turns OpenCV's own thread pool off (for a run); returns the previous setting to restore.

    Each frame's OpenCV work is tiny (a 640x360 colour conversion, some drawing). Split across the
    pool, it waits for a worker that the pipeline's other threads keep busy: measured, a BGR->RGB
    conversion takes 0.05 ms alone and 1.7 ms inside the pipeline, on the landmarker's critical path.
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return previous


class Session:
    def __init__(
        self,
        source: Source,
        analyzer: Analyzer,
        overlay: Overlay | None = None,
        sink: VideoSink | None = None,
        window: Window | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        overlap: bool = True,
    ) -> None:
        self.source = source
        self.analyzer = analyzer
        self.overlay = overlay
        self.sink = sink
        self.window = window
        self.on_result = on_result
        self.stats = RunStats()
        self.fps = FPSMonitor()
        # the landmarker (most of each frame's time, GIL released) runs one frame ahead in its own
        # thread, so features, model, overlay and recording of a frame overlap with the next detection
        self.overlap = overlap
        self._landmarks: Feed | None = None

    def _landmarked(self, split: CoreSplit):
        """(frame, faces, timings) in order, from the landmark thread (or inline without overlap)."""
        if not self.overlap:
            for frame in self.source:
                yield (frame, *self.analyzer.find_faces(frame))
            return
        # the reader thread makes each frame MediaPipe's image: measured inside the pipeline, that
        # took 1.6 ms of the landmark thread's frame (0.13 ms alone: the rest is waiting for the GIL)
        self.source.prepare = self.analyzer.prepare
        self.source.start()  # from this thread: the reader runs on our cores, not the graph's
        frames = iter(self.source)

        def produce():
            frame = next(frames, None)
            return None if frame is None else (frame, *self.analyzer.find_faces(frame))

        # lossless and short: a live source drops frames itself, so this never builds a backlog;
        # the landmark thread waits on the landmarker's graph, so it goes to the graph's core
        self._landmarks = Feed(produce, latest_only=False, depth=1 if self.source.live else 2, name="landmarks",
                               placed=split.join_graph).start()
        yield from self._landmarks

    def run(self) -> RunStats:
        """Run to the end of input, q/Esc or a signal; the source and recording are always finalized.

        Errors (a reader or writer thread failing) are raised after finalizing; `self.stats` then
        still tells how far the run got.
        """
        stats = self.stats
        start = time.perf_counter()
        opencv_threads = one_opencv_thread()
        # the landmarker's graph on a core of its own, this thread and those it starts on the others
        split = CoreSplit(getattr(self.analyzer.landmarker, "graph_threads", ()) if self.overlap else ())
        try:
            with split, handling_stop_signals() as signals:
                try:
                    try:
                        signals.running()
                        for frame, faces, timings in self._landmarked(split):
                            if not self._step(frame, faces, timings):
                                stats.stopped_by = "user"
                                break
                    finally:
                        signals.hold()  # a signal from here on is held, never raised
                except KeyboardInterrupt:
                    stats.stopped_by = "interrupt"
                finally:
                    stats.elapsed_s = time.perf_counter() - start
                    self._finish()
        finally:
            cv2.setNumThreads(opencv_threads)
        if signals.held:
            stats.stopped_by = "interrupt"
        return stats

    def _step(self, frame, faces, timings) -> bool:
        stats = self.stats
        result = self.analyzer.finish(frame, faces, timings)
        self.fps.tick()
        keep_going = True
        if self.overlay is not None and (self.sink is not None or self.window is not None):
            # one drawing of the faces; the recording's HUD tells the video's own time and rate,
            # the window's the processing rate and latency
            begin = time.perf_counter()
            image = self.overlay.draw_faces(result)
            recorded = None
            if self.sink is not None:
                recorded = image.copy() if self.window is not None else image
                self.overlay.media_hud(recorded, result, self.source.fps)
            if self.window is not None:
                self.overlay.live_hud(image, result, self.fps.fps, stats.latency.last)
            result.timings["overlay"] = (time.perf_counter() - begin) * 1000.0
            if recorded is not None:
                begin = time.perf_counter()
                self.sink.write(recorded)
                result.timings["record"] = (time.perf_counter() - begin) * 1000.0
            stats.latency.add((time.perf_counter() - frame.captured_at) * 1000.0)
            if self.window is not None:
                keep_going = self.window.show(image)
        else:
            stats.latency.add((time.perf_counter() - frame.captured_at) * 1000.0)
        result.timings["decode"] = frame.decode_ms
        for stage, ms in result.timings.items():
            stats.stages[stage].add(ms)
        stats.frames += 1
        stats.frames_with_faces += bool(result.faces)
        stats.faces_found += len(result.faces)
        if self.on_result is not None:
            self.on_result(result)
        return keep_going

    def _finish(self) -> None:
        try:
            self.source.close()  # first: a landmark thread waiting for a frame then sees the end
            if self._landmarks is not None:
                self._landmarks.stop()
            self.stats.dropped = self.source.dropped
            if self.window is not None:
                self.window.close()
        finally:
            if self.sink is not None:
                try:
                    self.sink.close()
                finally:
                    self.stats.recorded = self.sink.frames_written
