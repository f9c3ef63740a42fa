"""The landmarker's graph on a core of its own while a session runs, and everything put back after."""

import os
import sys
import threading

import pytest

from emoview.realtime import cores
from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.cores import CoreSplit, threads_started
from emoview.realtime.pipeline import Analyzer
from emoview.realtime.session import Session
from emoview.realtime.sources import VideoSource
from emoview.realtime.video_faces import VideoFaceFinder

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="thread placement: Linux, 2 cores or more"
)


def affinity(tid: int = 0) -> set[int]:
    return os.sched_getaffinity(tid)


def test_a_session_gives_the_landmarker_graph_a_core_and_puts_everything_back(samples, face_model, random_model):
    mine = affinity()
    graph_core, others = {max(mine)}, mine - {max(mine)}
    seen: dict[str, set[int]] = {}
    with VideoFaceFinder(face_model) as finder:
        analyzer = Analyzer(EmotionClassifier(random_model), finder)
        assert finder.graph_threads and all(os.path.exists(f"/proc/self/task/{tid}") for tid in finder.graph_threads)
        find_faces = analyzer.find_faces

        def landmarks(frame):
            seen.setdefault("landmark thread", affinity())
            return find_faces(frame)

        def on_result(result):
            seen.setdefault("caller", affinity())
            seen.setdefault("graph", set().union(*(affinity(tid) for tid in finder.graph_threads)))

        analyzer.find_faces = landmarks
        source = VideoSource(samples / "single_face.mp4")
        prepare = analyzer.prepare
        analyzer.prepare = lambda image: seen.setdefault("reader", affinity()) and prepare(image)
        with source:
            stats = Session(source, analyzer, on_result=on_result).run()
        assert stats.frames == 72
        after = {tid: affinity(tid) for tid in finder.graph_threads}
    assert seen == {"graph": graph_core, "landmark thread": graph_core, "caller": others, "reader": others}
    assert affinity() == mine and all(placed == mine for placed in after.values())


def test_worker_processes_and_single_cores_leave_placement_to_the_os(face_model, monkeypatch):
    from emoview.realtime.faces import FaceLandmarker

    mine = affinity()
    with FaceLandmarker(face_model) as landmarker:
        with CoreSplit(landmarker.graph_threads) as split:
            assert split.cores == ({max(mine)}, mine - {max(mine)})
        os.sched_setaffinity(0, {min(mine)})
        try:
            with CoreSplit(landmarker.graph_threads) as split:  # one core: nothing to split
                assert split.cores is None and affinity() == {min(mine)}
        finally:
            os.sched_setaffinity(0, mine)
        monkeypatch.setattr(cores, "_shared", False)
        cores.share_cores()  # what every batch worker does (workers.pin_threads)
        with CoreSplit(landmarker.graph_threads) as split:
            assert split.cores is None and affinity() == mine
            assert all(affinity(tid) == mine for tid in landmarker.graph_threads)


def test_threads_started_are_the_landmarkers_own_and_a_gone_one_leaves_placement_to_the_os(face_model):
    from emoview.realtime.faces import FaceLandmarker

    with threads_started() as started:
        landmarker = FaceLandmarker(face_model)
    with landmarker:
        assert started == landmarker.graph_threads and threading.get_native_id() not in started
    mine = affinity()
    with CoreSplit([2**22 + 12345]) as split:  # no such thread
        assert split.cores is None and affinity() == mine
