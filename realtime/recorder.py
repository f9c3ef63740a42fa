"""Recording the annotated frames to mp4, in a writer thread that never loses a shown frame.

H.264 through PyAV (its wheel bundles libx264; OpenCV's cannot write H.264) so recordings play in
a browser; OpenCV's mp4v only when H.264 is unavailable. The queue to the writer is bounded: if
encoding falls behind, the pipeline waits rather than growing memory or dropping frames. Closing
always finalizes the file, whatever stopped the run, so it stays playable.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from emoview.realtime.errors import InputError
from emoview.realtime.feed import lower_thread_priority
from emoview.realtime.monitor import Samples

_END = object()
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"}


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a recording path we cannot or should not write, before any work starts."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--record {path} is a folder; give a file name such as {path / 'session.mp4'}")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another name or add --overwrite")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot record to {path}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot record to {path}: folder {parent} is not writable; choose another path")
    # os.access cannot see a read-only mount for root, a full disk or a special folder: try it
    existed = path.exists()
    try:
        with open(path, "ab" if existed else "xb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot record to {path} ({exc.strerror or exc}); choose another path") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


class _PyAVWriter:
    codec = "h264"

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av

        # Fragmented MP4, a fragment per second: a run that dies (disk full, power, SIGKILL) before
        # the file is finalized still leaves every complete fragment playable, not a file without
        # its index. Browsers, players and OpenCV read it like any mp4.
        self._container = av.open(str(path), mode="w", options=FRAGMENTED_MP4)
        try:
            rate = Fraction(fps).limit_denominator(1001)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            # superfast: ~40% less CPU than veryfast for ~30% larger files (~0.8 Mbit/s at 640x360),
            # which matters when the encoder shares two cores with the landmarker (see emoview bench)
            stream.options = {"preset": "superfast", "tune": "zerolatency", "crf": "23"}
            stream.codec_context.thread_count = 1
            self._stream = stream
        except Exception:
            self._container.close()
            raise

    def write(self, image: np.ndarray) -> None:
        import av

        # OpenCV's BGR->I420 (BT.601, limited range, like swscale's default) costs a quarter of
        # PyAV's conversion; the sink hands over even sizes only, as 4:2:0 requires
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()


class _OpenCVWriter:
    codec = "mp4v"

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write {path}")

    def write(self, image: np.ndarray) -> None:
        self._writer.write(image)

    def close(self) -> None:
        self._writer.release()


def _open_writer(path: Path, fps: float, size: tuple[int, int]):
    try:
        return _PyAVWriter(path, fps, size)
    except ImportError:
        pass  # no PyAV: fall back
    except Exception as exc:  # noqa: BLE001 - libx264 missing or refused: fall back, but say so
        if "libx264" not in str(exc) and "codec" not in str(exc).lower():
            raise
    return _OpenCVWriter(path, fps, size)


class VideoSink:
    """`with VideoSink(path, fps) as sink: sink.write(bgr)`; the size is `size`, or the first frame's.

    Frames of another size (an image folder) are letterboxed: scaled to fit, centred on black.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        queue_size: int = 8,
        size: tuple[int, int] | None = None,
        audio_from: str | os.PathLike | None = None,
    ) -> None:
        self.path = Path(path)
        self.fps = fps
        self.audio_from = audio_from  # a video whose sound goes into the finished file
        self.sound = False  # the finished file carries sound
        self.finish_problem: str | None = None  # why the file stayed fragmented (still playable)
        self.frames_written = 0
        self.encode_ms = 0.0  # total time spent encoding, for the benchmark
        self.encode_times = Samples()  # per frame, ms: the benchmark's encode percentiles
        self.codec: str | None = None
        self._size: tuple[int, int] | None = None if size is None else (size[0] // 2 * 2, size[1] // 2 * 2)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self, image: np.ndarray) -> None:
        self._raise_if_failed()
        if self._thread is None:
            self._size = self._size or (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2)
            self._thread = threading.Thread(target=self._run, name="record", daemon=True)
            self._thread.start()
        while True:  # wait for room, but notice if the writer died meanwhile
            try:
                self._queue.put(image, timeout=0.2)
                return
            except queue.Full:
                self._raise_if_failed()

    def _run(self) -> None:
        lower_thread_priority()  # encoding runs behind a queue: the landmarker's threads go first
        writer = None
        try:
            writer = _open_writer(self.path, self.fps, self._size)
            self.codec = writer.codec
            while True:
                try:
                    # with a timeout: a wake-up lost to a signal arriving mid-put (seen about once
                    # in 20 Ctrl-Cs) would otherwise leave this thread, and close()'s join, waiting forever
                    image = self._queue.get(timeout=0.25)
                except queue.Empty:
                    if self._closed:  # close() was called and everything queued is written
                        break
                    continue
                if image is _END:
                    break
                start = time.perf_counter()
                writer.write(self._fit(image))
                elapsed_ms = (time.perf_counter() - start) * 1000.0
                self.encode_ms += elapsed_ms
                self.encode_times.add(elapsed_ms)
                self.frames_written += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the pipeline by write()/close()
            self._error = exc
            while True:  # unblock a producer waiting on a full queue
                try:
                    if self._queue.get_nowait() is _END:
                        break
                except queue.Empty:
                    break
        finally:
            if writer is not None:
                try:
                    writer.close()
                except Exception as exc:  # noqa: BLE001
                    self._error = self._error or exc
                if self._error is None and writer.codec == _PyAVWriter.codec and self.frames_written:
                    self._finish()

    def _finish(self) -> None:
        """The fragmented file becomes a plain mp4 with the input's sound (see `mp4.py`)."""
        from emoview.realtime.mp4 import finalize_mp4

        try:
            self.sound = finalize_mp4(self.path, self.audio_from, self.frames_written, self.fps)
        except Exception as exc:  # noqa: BLE001 - the fragmented file is kept, and it plays
            self.finish_problem = _describe(exc)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        w, h = self._size
        if image.shape[1] - w in (0, 1) and image.shape[0] - h in (0, 1):
            return image[:h, :w]  # odd sizes lose one pixel row/column: yuv420p needs even sizes
        scale = min(w / image.shape[1], h / image.shape[0])
        size = (max(1, min(w, round(image.shape[1] * scale))), max(1, min(h, round(image.shape[0] * scale))))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((h, w, 3), dtype=np.uint8)
        y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
        canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
        return canvas

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error = self._error
            raise InputError(
                f"recording to {self.path} failed after {self.frames_written} frames ({_describe(error)}); "
                "the recording up to the failure is kept and playable: free disk space or choose another --record path"
            ) from None

    def close(self) -> None:
        """Finish encoding everything queued and finalize the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        self._raise_if_failed()


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
