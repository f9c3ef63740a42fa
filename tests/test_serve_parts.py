"""The pieces `emoview serve` is built from, on their own: latest-value slots, the pushed source
(a browser camera's frames), and recordings switched on and off mid-session."""

import threading
import time

import av
import numpy as np
import pytest

from emoview.realtime.errors import InputError
from emoview.realtime.pushed_source import PushedSource
from emoview.realtime.recording_switch import RecordingSwitch
from emoview.realtime.slot import Slot
from serving import require


def test_slot_readers_get_the_newest_value_and_wake_on_close():
    slot = Slot[int]()
    assert slot.get() == (0, None)
    for value in (1, 2, 3):
        slot.put(value)
    assert slot.wait_newer(0, timeout=1) == (3, 3)  # a late reader skips 1 and 2
    started = time.monotonic()
    assert slot.wait_newer(3, timeout=0.2) == (3, 3)  # nothing newer: the current one after the timeout
    assert time.monotonic() - started >= 0.15
    woken = []
    reader = threading.Thread(target=lambda: woken.append(slot.wait_newer(3)))
    reader.start()
    slot.close()
    reader.join(5)
    assert woken == [(3, 3)] and slot.closed


def test_pushed_source_keeps_the_newest_frame_with_rising_timestamps():
    images = [np.full((4, 6, 3), i, np.uint8) for i in range(3)]
    source = PushedSource()
    try:
        stamps = [source.push(image) for image in images]  # nobody reads yet: each push replaces the last
        assert all(b - a >= 1.0 for a, b in zip(stamps, stamps[1:]))  # whole milliseconds apart, for the landmarker
        frames = iter(source)
        frame = next(frames)
        assert frame.image is images[2] and frame.timestamp_ms == stamps[2] and frame.index == 0
        assert source.replaced == 2 and source.dropped == 2
        later = source.push(images[0])
        assert next(frames).timestamp_ms == later
        source.end()
        assert next(frames, None) is None
        with pytest.raises(RuntimeError):
            source.push(images[0])
    finally:
        source.close()


def test_recordings_start_and_stop_mid_session(tmp_path):
    switch = RecordingSwitch(tmp_path, fps=lambda: 12.4)
    frame = np.zeros((72, 96, 3), np.uint8)
    switch.write(frame)  # not recording: nothing happens
    assert switch.stop() is None and switch.current is None
    first = switch.start()
    with pytest.raises(RuntimeError):
        switch.start()
    for i in range(10):
        frame[:] = i * 20
        switch.write(frame.copy())
    recording = switch.stop()
    assert recording.path == first and recording.frames == 10 and recording.codec == "h264"
    second = switch.start()
    assert second != first
    switch.write(frame)
    switch.close()  # the session ended: the recording in progress is finalized
    with av.open(str(first)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and sum(1 for _ in container.decode(stream)) == 10
        assert stream.average_rate == 12  # recorded at the session's rate
    assert [r.frames for r in switch.finished] == [10, 1] and switch.frames_written == 11


def test_recordings_folder_must_exist(tmp_path):
    with pytest.raises(InputError, match="is not a folder"):
        RecordingSwitch(tmp_path / "missing", fps=lambda: 30.0)


def test_a_frame_is_checked_before_it_is_decoded():
    import cv2

    require("starlette", "uvicorn")
    from starlette.exceptions import HTTPException

    from emoview.realtime.commands.serve_http import _decode

    small = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    assert _decode(small).shape == (48, 64, 3)
    flat_and_huge = cv2.imencode(".png", np.zeros((5000, 4000), np.uint8))[1].tobytes()  # a few kB
    assert len(flat_and_huge) < 100_000
    for body, status in ((flat_and_huge, 413), (b"not an image", 415), (b"", 415), (small[:40], 415)):
        with pytest.raises(HTTPException) as refused:
            _decode(body)
        assert refused.value.status_code == status
