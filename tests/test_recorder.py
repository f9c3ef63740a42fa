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


# -- finished files: a frame count in the header, and the input's sound -------------------------

import subprocess
import sys
from fractions import Fraction

from emoview.realtime.recorder import VideoSink as Sink


def video_with_tone(path, samples, codec: str, frames: int = 48, fps: int = 24, rate: int = 48000):
    """Real sample frames plus a 440 Hz tone as long as the video, muxed with PyAV."""
    import cv2

    source = cv2.VideoCapture(str(samples / "single_face.mp4"))
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        audio = out.add_stream(codec, rate=rate)
        audio.layout = "mono"
        for i in range(frames):
            ok, image = source.read()
            assert ok
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        t = np.arange(int(rate * frames / fps)) / rate
        tone = (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
        step = 1024
        for start in range(0, len(tone), step):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    source.release()
    return path


def probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = video.frames  # what the header says
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        decoded = sum(1 for _ in container.decode(video))
    with av.open(str(path)) as container:
        audio_s = None
        if audio is not None:
            last = [f for f in container.decode(audio=0)][-1]
            audio_s = float(last.pts * last.time_base) + last.samples / last.sample_rate
    return {"frames": frames, "decoded": decoded, "audio": audio, "audio_s": audio_s}


@pytest.mark.parametrize("container,codec,expected", [("mp4", "aac", "aac"), ("mkv", "pcm_s16le", "aac"), ("mp4", "mp3", "mp3float")])
def test_recording_carries_the_sound_and_its_frame_count(tmp_path, samples, face_model, random_model, container, codec, expected):
    """AAC and MP3 are copied; PCM (not for mp4) becomes AAC; the header counts the frames."""
    source = video_with_tone(tmp_path / f"tone.{container}", samples, codec)
    out = tmp_path / "annotated.mp4"
    run = subprocess.run([sys.executable, "-m", "emoview", "--video", str(source), "--record", str(out), "--no-display",
                          "--model", str(random_model), "--face-model", str(face_model)], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    assert "recorded 48 frames" in run.stderr and "with sound" in run.stderr
    found = probe(out)
    assert found["frames"] == found["decoded"] == 48  # in the container's header: not a fragmented file
    assert found["audio"] == expected
    assert found["audio_s"] == pytest.approx(2.0, abs=0.05)


def test_a_recording_stopped_early_keeps_only_its_own_stretch_of_sound(tmp_path, samples):
    source = video_with_tone(tmp_path / "tone.mp4", samples, "aac")
    out = tmp_path / "short.mp4"
    with Sink(out, fps=24, audio_from=source) as sink:
        for i in range(12):  # half a second of a two-second video
            sink.write(np.full((360, 640, 3), i * 10, np.uint8))
    found = probe(out)
    assert sink.sound and found["frames"] == found["decoded"] == 12
    assert 0.45 < found["audio_s"] <= 0.5 + 1024 / 48000 + 1e-6  # whole AAC frames up to the last video frame


def test_a_recording_without_sound_is_finished_too(tmp_path, samples):
    out = tmp_path / "silent.mp4"
    with Sink(out, fps=24, audio_from=samples / "no_face.mp4") as sink:
        for i in range(10):
            sink.write(np.zeros((120, 160, 3), np.uint8))
    found = probe(out)
    assert found["frames"] == found["decoded"] == 10 and (found["audio"] is None) == (not sink.sound)
