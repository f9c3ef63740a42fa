"""One video file into its per-second timeline, with an emotion model that is already loaded.

`emoview.analyze_video` and every batch worker call this one function, so a video analysed alone,
by a local worker or by a Ray actor gives the same timeline. The emotion model (an ONNX Runtime
session) is passed in, because a worker keeps one for all its videos; the face tracker is made
anew for each video: MediaPipe's video mode carries faces over from frame to frame, and a tracker
that had seen another video first would start this one differently (and timestamps must grow).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.errors import InputError
from emoview.realtime.face_search import MIN_FACE
from emoview.realtime.pipeline import Analyzer
from emoview.realtime.session import RunStats, Session
from emoview.realtime.sources import VideoSource
from emoview.realtime.timeline import Timeline, TimelineBuilder, run_details
from emoview.realtime.video_faces import VideoFaceFinder

TRUNCATED = 0.95  # fewer frames than this share of the announced count: the file is truncated or damaged


@dataclass
class VideoRun:
    timeline: Timeline
    stats: RunStats
    truncated: str | None  # why the file ended before its announced frames, or None


def video_timeline(
    path: str | os.PathLike,
    classifier: EmotionClassifier,
    face_model: str | os.PathLike,
    max_faces: int = 1,
    min_confidence: float = 0.5,
    window: int | None = None,
    min_face: int = MIN_FACE,
) -> VideoRun:
    """Every frame of the video, in order. Raises InputError for a file that gives no frames, and
    KeyboardInterrupt if a signal stopped the run."""
    with VideoSource(path) as source:  # a bad file fails before the face model loads
        # small faces are found by a search in its own thread; waiting for each search makes the
        # timeline the same whatever the machine's load or the number of workers beside it
        with VideoFaceFinder(face_model, max_faces, min_confidence, min_face, wait_for_discovery=True) as landmarker:
            analyzer = Analyzer(classifier, landmarker, window=window)
            builder = TimelineBuilder(analyzer.labels, source.fps)
            stats = Session(source, analyzer, on_result=builder.add).run()
    if stats.stopped_by == "interrupt":
        raise KeyboardInterrupt
    if builder.frames == 0:
        raise InputError(f"{path} gave no frames; check the file")
    data = builder.build(stats.fps, stats.stopped_by)
    data.update(run_details(source, analyzer))
    truncated = None
    if source.frames_read < TRUNCATED * source.frame_count:  # the announced count is an estimate in some containers
        truncated = (
            f"the file ended after {source.frames_read} of its {source.frame_count} frames (truncated or damaged); "
            "re-encode or replace it"
        )
    return VideoRun(Timeline(data, analyzer.labels), stats, truncated)
