"""Every source type behind the one interface, on real media."""

import contextlib
import os
import shutil
import sys
import threading
import time

import numpy as np
import pytest

from emoview.realtime.errors import InputError
from emoview.realtime.feed import Feed
from emoview.realtime.sources import CameraSource, ImageFolderSource, VideoSource


def test_video_source_gives_every_frame_in_order_with_file_timestamps(samples):
    with VideoSource(samples / "WolfgangLanger_Pexels.mp4") as source:
        frames = [(f.index, f.timestamp_ms, f.image.shape) for f in source]
    assert len(frames) == 472 == source.frame_count
    assert [i for i, _, _ in frames] == list(range(472))
    times = np.array([t for _, t, _ in frames])
    assert np.all(np.diff(times) > 0)
    assert abs(np.median(np.diff(times)) - 1000 / 23.976) < 1.0  # the file's own 23.976 fps
    assert frames[0][2] == (360, 640, 3)
    assert not source.ended_early


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts the threads in /proc/self/task")
def test_a_video_file_is_decoded_without_threads_of_its_own(samples):
    """FFmpeg's own decoding threads would run beside the landmarker at full priority."""
    from emoview.realtime.cores import threads_started

    with contextlib.ExitStack() as still_open:  # closes the file after the threads are counted
        with threads_started() as started:
            source = still_open.enter_context(VideoSource(samples / "WolfgangLanger_Pexels.mp4"))
            frames = source.read_inline()  # in this thread: no reader thread either
            for _ in range(30):
                next(frames)
        assert source.frames_read == 30
    assert started == set()  # threads started from opening to the 30th frame (others' may end meanwhile)


def test_reader_thread_prepares_frames_for_the_landmarker(samples):
    readers = set()

    def prepare(image):
        readers.add(threading.current_thread().name)
        return image.mean()

    with VideoSource(samples / "single_face.mp4") as source:
        source.prepare = prepare
        frames = list(source)
    assert len(frames) == 72 and all(f.prepared == f.image.mean() for f in frames)
    assert readers == {f"read:{source.name}"}  # done by the reader, not by whoever iterates


def test_paced_video_plays_in_real_time(samples):
    with VideoSource(samples / "single_face.mp4", paced=True) as source:
        start = time.perf_counter()
        count = sum(1 for _ in source)
        elapsed = time.perf_counter() - start
    assert source.live and count + source.dropped == 72  # a busy machine may drop one, never queue it
    assert elapsed >= 71 / source.fps * 0.9  # not faster than the file's rate


def test_camera_source_reads_a_stream_through_videocapture(samples):
    # any stream cv2.VideoCapture opens drives the same capture thread a webcam does
    with CameraSource(str(samples / "single_face.mp4")) as source:
        frames = list(source)
    assert source.live and 0 < len(frames) <= 72
    assert len(frames) + source.dropped == 72  # what the consumer did not take was dropped, not queued
    assert all(a.timestamp_ms < b.timestamp_ms for a, b in zip(frames, frames[1:]))


def test_camera_that_does_not_exist_is_one_clear_error():
    with pytest.raises(InputError, match="camera 99 could not be opened"):
        CameraSource(99)


def test_image_folder_source_skips_unreadable_files(tmp_path, samples):
    shutil.copy(samples / "single_face.jpg", tmp_path / "a.jpg")
    (tmp_path / "sub").mkdir()
    shutil.copy(samples / "multi_face.jpg", tmp_path / "sub" / "b.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    with ImageFolderSource(tmp_path) as source:
        frames = list(source)
    assert len(frames) == 2 and source.stills
    assert [p.name for p in source.skipped] == ["broken.png"]


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.mp4", "does not exist"),
    (lambda d: d, "is a folder"),
    (lambda d: (d / "x.mp4").write_text("text") and d / "x.mp4", "cannot be opened as a video|no readable video frames"),
])
def test_bad_video_paths_are_one_clear_error(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        VideoSource(make(tmp_path))


def test_lossless_feed_keeps_every_item_and_bounds_the_buffer():
    produced = iter(range(100))
    feed = Feed(lambda: next(produced, None), latest_only=False, depth=3).start()
    got = []
    for item in feed:
        assert len(feed._items) <= 3
        got.append(item)
        time.sleep(0.001)
    assert got == list(range(100)) and feed.dropped == 0


def test_latest_only_feed_drops_old_items_for_a_slow_consumer():
    produced = iter(range(200))
    feed = Feed(lambda: next(produced, None), latest_only=True).start()
    got = []
    for item in feed:
        got.append(item)
        time.sleep(0.005)
    assert got == sorted(got) and got[-1] == 199
    assert feed.dropped > 0 and len(got) + feed.dropped == 200


def test_producer_errors_reach_the_consumer():
    def broken():
        raise OSError("device unplugged")

    feed = Feed(broken, latest_only=False).start()
    with pytest.raises(OSError, match="unplugged"):
        list(feed)


def test_stopping_a_feed_ends_its_thread():
    feed = Feed(lambda: 1, latest_only=False, depth=2).start()
    assert feed.get() == 1
    feed.stop()
    assert not any(t.name == "feed" and t.is_alive() for t in threading.enumerate())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux")
def test_file_reader_runs_at_background_priority_and_camera_reader_does_not(samples):
    from emoview.realtime.feed import BACKGROUND_NICE

    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}

    def prepare(image):
        seen.setdefault(threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    for source in (VideoSource(samples / "single_face.mp4"), CameraSource(str(samples / "single_face.mp4"))):
        with source:
            source.prepare = prepare
            list(source)
    assert seen == {"read:single_face.mp4": min(19, main + BACKGROUND_NICE), f"read:camera {samples / 'single_face.mp4'}": main}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main  # the caller's own priority is untouched
