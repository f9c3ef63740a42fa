"""Where frames come from: a camera, a video file or a folder of images, behind one interface.

The pipeline iterates a source and never asks which kind it has. Each source reads in its own
thread: a camera keeps only the newest frame (a slow stage never builds a backlog), a video file
hands over every frame in order with the file's own timestamps, and a paced video plays at its
frame rate and drops like a camera would, which is how live latency is measured without a webcam.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from emoview.realtime.errors import InputError
from emoview.realtime.faces import read_image
from emoview.realtime.feed import Feed, lower_thread_priority

if not os.environ.get("EMOVIEW_DEBUG"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # we report failures ourselves

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
FIRST_FRAME_TIMEOUT_S = 5.0
MAX_CANVAS = (1920, 1080)  # a recording of images is never larger than this


@dataclass
class Frame:
    image: np.ndarray  # BGR, owned by the frame
    index: int  # 0-based position in the source
    timestamp_ms: float  # media time: from the file, or since the camera opened
    captured_at: float  # perf_counter() when captured (live) or handed over (files): latency starts
    decode_ms: float = 0.0
    prepared: object = None  # the image as the landmarker takes it, made by the reader thread (`Source.prepare`; in decode_ms)


class Source:
    """Base: a thread-backed iterator of `Frame`s. Subclasses provide `_read()`."""

    kind = "source"
    live = False  # frames arrive in real time and may be dropped
    stills = False  # frames are unrelated images, not a sequence

    def __init__(self, name: str, fps: float, latest_only: bool, depth: int = 4) -> None:
        self.name = name
        self.fps = fps if fps and fps > 0 and np.isfinite(fps) else 30.0
        self.frames_read = 0
        # a file decodes ahead into its buffer and can wait for the landmarker's threads; a camera's
        # reader must take each frame when it comes
        placed = None if latest_only else lower_thread_priority
        self._feed: Feed[Frame] = Feed(self._timed_read, latest_only=latest_only, depth=depth, name=f"read:{name}", placed=placed)
        self._started = False
        # set before iterating: runs on every frame in the reader thread, which has time to spare,
        # so the landmark thread (the pipeline's bottleneck) gets frames ready for MediaPipe
        self.prepare: Callable[[np.ndarray], object] | None = None

    # subclasses -------------------------------------------------------------------------------
    def _read(self) -> tuple[np.ndarray, float] | None:
        raise NotImplementedError

    def _release(self) -> None:
        pass

    # interface --------------------------------------------------------------------------------
    def _timed_read(self) -> Frame | None:
        start = time.perf_counter()
        try:
            got = self._read()
        except Exception as exc:  # noqa: BLE001 - a failing device or file ends the run with one clear line
            raise InputError(
                f"reading {self.name} failed after {self.frames_read} frames ({_describe(exc)}); "
                f"the frames before were analysed: check the {self.kind} and try again"
            ) from exc
        if got is None:
            return None
        image, timestamp_ms = got
        prepared = None if self.prepare is None else self.prepare(image)
        now = time.perf_counter()
        frame = Frame(image, self.frames_read, timestamp_ms, now, (now - start) * 1000.0, prepared)
        self.frames_read += 1
        return frame

    @property
    def dropped(self) -> int:
        return self._feed.dropped

    def read_inline(self) -> Iterator[Frame]:
        """Every frame read in the calling thread, no reader thread: the benchmark's single-threaded mode."""
        if self._started:
            raise RuntimeError("a source is read either by its thread or inline, once")
        self._started = True
        while (frame := self._timed_read()) is not None:
            yield frame

    def start(self) -> None:
        """Starts the reader thread now (iterating starts it too): it runs on the cores of the thread
        that starts it, as threads inherit them (`cores.CoreSplit`)."""
        if not self._started:
            self._started = True
            self._feed.start()

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        for frame in self._feed:
            if not self.live:
                # a file's frames are ready whenever asked for: latency starts at hand-over
                frame.captured_at = time.perf_counter()
            yield frame

    def close(self) -> None:
        self._feed.stop()
        self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CameraSource(Source):
    """A webcam through cv2.VideoCapture, read continuously; only the newest frame is kept.

    `index` is a camera number, or anything else cv2.VideoCapture opens as a stream (a URL, or a
    file, which is how the tests drive this exact code without a webcam).
    """

    kind = "camera"
    live = True

    def __init__(self, index: int | str, width: int | None = None, height: int | None = None, fps: float | None = None) -> None:
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise InputError(
                f"camera {index} could not be opened; check that it is connected and not in use, "
                "try another --camera index, or analyse a file with --video FILE"
            )
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
            if value:
                capture.set(prop, value)
        self._capture = capture
        self._opened_at = time.perf_counter()
        self.ended_early = False
        super().__init__(f"camera {index}", fps or capture.get(cv2.CAP_PROP_FPS), latest_only=True)
        self._first = self._first_frame(index)

    def _first_frame(self, index: int) -> np.ndarray:
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while time.monotonic() < deadline:
            ok, image = self._capture.read()
            if ok and image is not None:
                return image
            time.sleep(0.05)
        self._capture.release()
        raise InputError(f"camera {index} opened but sent no frames for {FIRST_FRAME_TIMEOUT_S:.0f} s; check the camera, or use --video FILE")

    def _read(self) -> tuple[np.ndarray, float] | None:
        if self._first is not None:
            image, self._first = self._first, None
        else:
            ok, image = self._capture.read()
            if not ok or image is None:
                self.ended_early = True  # a camera has no end: it was unplugged or its stream stopped
                return None  # the run stops cleanly and says so
        return image, (time.perf_counter() - self._opened_at) * 1000.0

    def _release(self) -> None:
        self._capture.release()


class VideoSource(Source):
    """A video file, every frame in order, timestamps from the file.

    With `paced=True` frames are released at the file's frame rate and the newest one wins, as
    with a camera: use it to measure live latency and drops from a file.
    """

    kind = "video"

    def __init__(self, path: str | os.PathLike, paced: bool = False, rate: float | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"video {self.path} does not exist; check the path")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder; pass a video file to --video, or use --images DIR")
        capture = open_video(self.path)
        if not capture.isOpened():
            capture.release()
            raise InputError(f"{self.path} cannot be opened as a video (not a video, or damaged); try another file")
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise InputError(f"{self.path} has no readable video frames (not a video, or damaged); try another file")
        self._capture = capture
        self._first: np.ndarray | None = first
        self._first_ts = capture.get(cv2.CAP_PROP_POS_MSEC)
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.size = (first.shape[1], first.shape[0])
        self.live = paced
        self._paced_start: float | None = None
        super().__init__(self.path.name, capture.get(cv2.CAP_PROP_FPS), latest_only=paced)
        self.rate = rate or self.fps  # paced playback rate: the file's own, or e.g. 30 to act as a 30 fps camera
        self._last_ts = -1.0

    def _read(self) -> tuple[np.ndarray, float] | None:
        if self._first is not None:
            image, self._first = self._first, None
            ts = self._first_ts
        else:
            ok, image = self._capture.read()
            if not ok or image is None:
                return None
            ts = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        index = self.frames_read
        if not np.isfinite(ts) or ts <= self._last_ts:  # some containers report no or repeated times
            ts = index * 1000.0 / self.fps
        self._last_ts = ts
        return image, ts

    def _timed_read(self) -> Frame | None:
        """Paced: decode (timed as decode_ms), then wait until the frame is due; capture time = release time."""
        frame = super()._timed_read()
        if frame is not None and self.live:
            self._pace(frame.index)
            frame.captured_at = time.perf_counter()
        return frame

    def _pace(self, index: int) -> None:
        now = time.perf_counter()
        if self._paced_start is None:
            self._paced_start = now
        due = self._paced_start + index / self.rate
        if due > now:
            time.sleep(due - now)

    @property
    def ended_early(self) -> bool:
        """True when the file promised more frames than could be decoded (truncated or damaged)."""
        return self.frame_count > 0 and self.frames_read < self.frame_count - 1

    def _release(self) -> None:
        self._capture.release()


def open_video(path: str | os.PathLike) -> cv2.VideoCapture:
    """A file opened for decoding in the calling thread only.

    FFmpeg would otherwise decode on a thread per core, started unniced by whichever thread opens the
    file: they then run beside the landmarker, the pipeline's bottleneck, and slow it down (measured
    on a 640x360 H.264 file: 1.32 ms of CPU per frame on two threads against 0.90 ms on one, at the
    same speed). A backend that does not take the setting opens the file its own way.
    """
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if capture.isOpened():
        return capture
    capture.release()
    return cv2.VideoCapture(str(path))


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160]}" if text else type(error).__name__


class ImageFolderSource(Source):
    """Every image in a folder (recursively, sorted by path); unreadable files are skipped and counted."""

    kind = "images"
    stills = True

    def __init__(self, folder: str | os.PathLike, fps: float = 1.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder} is not a folder of images; check the path")
        self.paths = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise InputError(f"{self.folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}); check the path")
        self.skipped: list[Path] = []
        self._next = 0
        super().__init__(self.folder.name, fps, latest_only=False)

    def _read(self) -> tuple[np.ndarray, float] | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = read_image(path)
            if image is None:
                self.skipped.append(path)
                continue
            return image, self.frames_read * 1000.0 / self.fps
        return None

    def canvas_size(self, limit: tuple[int, int] = MAX_CANVAS) -> tuple[int, int]:
        """One frame size for a recording of images of many sizes: the widest width and tallest
        height among them, scaled down to fit `limit`, even (as H.264 needs). Read from the
        files' headers (Pillow, which matplotlib brings), so a large folder costs no decoding."""
        width, height = 0, 0
        for path in self.paths:
            size = _image_size(path)
            if size is not None:
                width, height = max(width, size[0]), max(height, size[1])
        if not width:
            return (640, 360)
        scale = min(1.0, limit[0] / width, limit[1] / height)
        return (max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2))


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - not an image Pillow knows: OpenCV may still read it
        image = read_image(path)
        return None if image is None else (image.shape[1], image.shape[0])
