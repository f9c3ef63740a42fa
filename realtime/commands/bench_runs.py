"""The measurements behind `emoview bench`: the landmarker floor, and the pipeline in each mode.

The floor is the bare MediaPipe landmarker on frames decoded (and converted to RGB) beforehand,
timing its inference and the read-out of its result alone, with the same model, options and
timestamps as the pipeline's landmarker: nothing the pipeline does can make it faster. The pipeline runs are the real thing:
the live command's Session (threaded: decode thread, analysis, writer thread) or one thread doing
decode, analysis, overlay and encode in turn, each on a fresh analyzer so MediaPipe's tracking
state starts cold in every run, as it does for the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from emoview.realtime.annotate import Overlay
from emoview.realtime.cores import CoreSplit
from emoview.realtime.faces import FaceLandmarker, to_mp_image
from emoview.realtime.commands.live import open_analyzer
from emoview.realtime.monitor import FPSMonitor, Samples
from emoview.realtime.recorder import VideoSink, _open_writer
from emoview.realtime.session import Session, one_opencv_thread
from emoview.realtime.sources import Source

STAGE_ORDER = ("decode", "landmarks", "features", "model", "smoothing", "overlay", "encode", "record_wait")


@dataclass(frozen=True)
class RunConfig:
    mode: str = "threaded"  # threaded | single
    record: bool = False
    max_faces: int = 1
    paced: bool = False
    rate: float | None = None  # paced playback rate in fps; None: the file's own

    @property
    def name(self) -> str:
        parts = [self.mode, "record" if self.record else "no record", f"{self.max_faces} face" + ("s" if self.max_faces > 1 else "")]
        if self.paced:
            parts.append(f"paced {self.rate:.3g} fps" if self.rate else "paced")
        return ", ".join(parts)


@dataclass
class Measured:
    """What one run produced; `to_dict` turns it into the JSON the bench writes."""

    config: RunConfig
    frames: int = 0
    frames_with_faces: int = 0
    faces_found: int = 0  # summed over frames
    wall_s: float = 0.0
    cpu_s: float = 0.0
    dropped: int = 0
    codec: str | None = None
    stopped_by: str = "end"
    latency: Samples = field(default_factory=Samples)
    stages: dict[str, Samples] = field(default_factory=lambda: defaultdict(Samples))
    load_before: float = 0.0
    load_after: float = 0.0
    others_cores: float | None = None  # CPU other processes used meanwhile, in cores: the noise

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class Floor:
    """The bare landmarker on pre-decoded frames."""

    max_faces: int
    frames: int
    wall_s: float
    cpu_s: float
    detect: Samples
    frames_with_faces: int
    others_cores: float | None = None
    readout: str = "direct"  # FaceLandmarker.readout
    faces_found: int = 0  # summed over frames

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


def load_1m() -> float:
    return os.getloadavg()[0]


def machine_busy_s() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])  # not steal: the hypervisor's
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def clocks(into):
    """Wall and process CPU time (all threads) of the block; the load average around it; and the
    CPU other processes used meanwhile, which (unlike the load average, which counts this very
    benchmark too) says how far the numbers can be trusted."""
    into.load_before = load_1m()
    busy = machine_busy_s()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        into.wall_s = time.perf_counter() - wall
        into.cpu_s = time.process_time() - cpu
        into.load_after = load_1m()
        if busy is not None and into.wall_s > 0:
            into.others_cores = max(0.0, (machine_busy_s() - busy - into.cpu_s) / into.wall_s)


# -- the floor -----------------------------------------------------------------------------------


def decode_frames(source: Source, limit: int | None) -> list[tuple[object, int]]:
    """(mp.Image, timestamp ms) for the first `limit` frames, converted as FaceLandmarker.detect does."""
    frames = []
    last = 0  # FaceLandmarker's warm-up used timestamp 0: the same nudging as its detect()
    for frame in source.read_inline():
        ts = max(int(frame.timestamp_ms), last + 1)
        last = ts
        frames.append((to_mp_image(frame.image), ts))
        if limit and len(frames) >= limit:
            break
    return frames


def measure_floor(frames: list[tuple[object, int]], face_model: str | os.PathLike, max_faces: int, min_confidence: float = 0.5) -> Floor:
    """Times only MediaPipe's inference and the reading of its result (`FaceLandmarker.infer`, the
    fastest way we know to get landmarks out of MediaPipe, faster than its own Python API) on a
    fresh landmarker built exactly like the pipeline's."""
    detect = Samples()
    with FaceLandmarker(face_model, max_faces=max_faces, video=True, min_confidence=min_confidence) as landmarker:
        with_faces = found = 0
        timing = Measured(RunConfig())
        with CoreSplit(landmarker.graph_threads) as split, clocks(timing):
            split.join_graph()  # placed as in the threaded pipeline: this thread on the graph's core
            for image, ts in frames:
                start = time.perf_counter()
                faces = landmarker.infer(image, ts)
                detect.add((time.perf_counter() - start) * 1000.0)
                with_faces += bool(faces)
                found += len(faces)
        readout = landmarker.readout
    return Floor(max_faces, len(frames), timing.wall_s, timing.cpu_s, detect, with_faces, timing.others_cores, readout, found)


# -- the pipeline ----------------------------------------------------------------------------------


class HeadlessDisplay:
    """Stands in for the window: takes each annotated frame (the end of latency) and stops after `limit`."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.shown = 0

    def show(self, image: np.ndarray) -> bool:
        self.shown += 1
        return not self.limit or self.shown < self.limit

    def close(self) -> None:
        pass


def run_pipeline(config: RunConfig, args: argparse.Namespace, open_source: Callable[[RunConfig], Source], limit: int | None) -> Measured:
    """One run of the pipeline in `config`'s mode on a fresh analyzer; frames are drawn (the overlay
    is part of what a user sees) and, with `record`, encoded to a temporary H.264 file."""
    analyzer_args = argparse.Namespace(**{**vars(args), "max_faces": config.max_faces})
    measured = Measured(config)
    with contextlib.ExitStack() as stack:
        analyzer = open_analyzer(analyzer_args, stack)
        overlay = Overlay(analyzer.labels)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emoview-bench-")))
        record_path = folder / "bench.mp4" if config.record else None
        source = stack.enter_context(open_source(config))
        if config.mode == "single":
            _single(source, analyzer, overlay, record_path, limit, measured)
        else:
            _threaded(source, analyzer, overlay, record_path, limit, measured)
    return measured


def _threaded(source: Source, analyzer, overlay: Overlay, record_path: Path | None, limit: int | None, measured: Measured) -> None:
    sink = VideoSink(record_path, source.fps) if record_path else None
    session = Session(source, analyzer, overlay, sink, HeadlessDisplay(limit))
    with clocks(measured):
        stats = session.run()
    measured.frames, measured.frames_with_faces, measured.faces_found = stats.frames, stats.frames_with_faces, stats.faces_found
    measured.dropped, measured.latency, measured.stopped_by = stats.dropped, stats.latency, stats.stopped_by
    for stage, samples in stats.stages.items():
        if len(samples):
            measured.stages["record_wait" if stage == "record" else stage] = samples
    if sink is not None:
        measured.stages["encode"] = sink.encode_times
        measured.codec = sink.codec


def _single(source: Source, analyzer, overlay: Overlay, record_path: Path | None, limit: int | None, measured: Measured) -> None:
    """Decode, analyse, draw and encode one after another in this thread: the baseline threads must beat."""
    fps = FPSMonitor()
    writer = None
    size = None
    opencv_threads = one_opencv_thread()  # as in the Session: one thread means one thread
    try:
        with clocks(measured):
            try:
                for frame in source.read_inline():
                    result = analyzer.analyze(frame)
                    fps.tick()
                    begin = time.perf_counter()
                    image = overlay.draw(result, fps.fps, measured.latency.last)
                    result.timings["overlay"] = (time.perf_counter() - begin) * 1000.0
                    if record_path is not None:
                        begin = time.perf_counter()
                        if writer is None:
                            size = (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2)
                            writer = _open_writer(record_path, source.fps, size)
                            measured.codec = writer.codec
                        writer.write(image[: size[1], : size[0]])
                        result.timings["encode"] = (time.perf_counter() - begin) * 1000.0
                    measured.latency.add((time.perf_counter() - frame.captured_at) * 1000.0)
                    result.timings["decode"] = frame.decode_ms
                    for stage, ms in result.timings.items():
                        measured.stages[stage].add(ms)
                    measured.frames += 1
                    measured.frames_with_faces += bool(result.faces)
                    measured.faces_found += len(result.faces)
                    if limit and measured.frames >= limit:
                        measured.stopped_by = "limit"
                        break
            finally:
                if writer is not None:
                    writer.close()  # flushing the encoder's delayed frames is part of the work
    except KeyboardInterrupt:
        measured.stopped_by = "interrupt"
    finally:
        cv2.setNumThreads(opencv_threads)
