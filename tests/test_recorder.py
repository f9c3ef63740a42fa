"""Recordings: exactly the frames written, H.264, finalized whatever stops the run."""

import av
import numpy as np
import pytest

from emoview.realtime.errors import InputError
from emoview.realtime.recorder import VideoSink, check_output_path


def read_back(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        return stream.codec_context.name, frames


def test_sink_writes_every_frame_as_h264(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoSink(path, fps=24) as sink:
        for i in range(50):
            image = np.full((360, 640, 3), i * 5, np.uint8)
            sink.write(image)
    codec, frames = read_back(path)
    assert codec == "h264" and sink.codec == "h264"
    assert len(frames) == 50 == sink.frames_written
    assert frames[0].shape == (360, 640, 3)
    assert abs(int(frames[40].mean()) - 200) <= 3  # the content, in order


def test_frames_of_other_sizes_are_letterboxed(tmp_path):
    path = tmp_path / "mixed.mp4"
    with VideoSink(path, fps=5) as sink:
        sink.write(np.zeros((240, 320, 3), np.uint8))
        sink.write(np.full((480, 320, 3), 255, np.uint8))
        sink.write(np.zeros((241, 321, 3), np.uint8))  # odd size: cropped by one pixel
    _, frames = read_back(path)
    assert len(frames) == 3 and all(f.shape == (240, 320, 3) for f in frames)
    assert frames[1][:, 160].mean() > 200 and frames[1][:, 0].mean() < 30  # centred, black bars


def test_close_is_idempotent_and_an_unused_sink_writes_nothing(tmp_path):
    sink = VideoSink(tmp_path / "never.mp4", fps=30)
    sink.close()
    sink.close()
    assert not (tmp_path / "never.mp4").exists()


def test_write_errors_surface_as_one_clear_error(tmp_path):
    target = tmp_path / "gone" / "out.mp4"  # the folder does not exist: the writer thread fails
    sink = VideoSink(target, fps=30)
    with pytest.raises(InputError, match="recording to .* failed after 0 frames"):
        for _ in range(100):
            sink.write(np.zeros((64, 64, 3), np.uint8))
        sink.close()


def test_output_path_checks(tmp_path):
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(InputError, match="already exists.*--overwrite"):
        check_output_path(existing, overwrite=False)
    assert check_output_path(existing, overwrite=True) == existing
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path, overwrite=True)
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "a.mp4", overwrite=False)
