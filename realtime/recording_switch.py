"""Recording that starts and stops while a session runs: the sink a Session writes every frame to.

Each start opens a new H.264 file (a `VideoSink`, so the writer thread, bounded queue and
finalization are the recorder's own) in the recordings folder, named by the time it started and
never replacing a file. Stopping finalizes it; so does the end of the session, whatever ended it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from emoview.realtime.errors import InputError
from emoview.realtime.files import unwritable
from emoview.realtime.recorder import VideoSink, check_output_path


def check_recordings_folder(folder: str | Path) -> Path:
    """Refuse a recordings folder that is missing or unwritable before anything starts."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--record-dir {folder} is not a folder; create it or choose another")
    reason = unwritable(folder)
    if reason:
        raise InputError(f"cannot record into {folder} ({reason}); choose another --record-dir")
    return folder


@dataclass(frozen=True)
class Recording:
    path: Path
    frames: int
    codec: str | None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "frames": self.frames, "codec": self.codec}


class RecordingSwitch:
    """`start()` / `stop()` from any thread; `write()` from the session's thread."""

    def __init__(self, folder: str | Path, fps: Callable[[], float]) -> None:
        self.folder = check_recordings_folder(folder)
        self._fps = fps  # the frame rate to record at, asked when a recording starts
        self._lock = threading.Lock()
        self._sink: VideoSink | None = None
        self.frames_written = 0  # over every recording of the session
        self.finished: list[Recording] = []
        self.error: str | None = None  # why the last recording stopped early, if it did

    @property
    def current(self) -> VideoSink | None:
        return self._sink

    def start(self) -> Path:
        with self._lock:
            if self._sink is not None:
                raise RuntimeError(f"already recording to {self._sink.path}")
            self._sink = VideoSink(self._new_path(), max(1.0, round(self._fps())))
            self.error = None
            return self._sink.path

    def _new_path(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            path = self.folder / (f"emoview-{stamp}.mp4" if n == 1 else f"emoview-{stamp}-{n}.mp4")
            if not path.exists():
                return check_output_path(path, overwrite=False)
        raise InputError(f"too many recordings named emoview-{stamp}*.mp4 in {self.folder}")

    def stop(self) -> Recording | None:
        """Finalizes the current recording (None if there is none); waits until the file is complete."""
        with self._lock:
            sink, self._sink = self._sink, None
        return None if sink is None else self._finalize(sink)

    def _finalize(self, sink: VideoSink) -> Recording:
        try:
            sink.close()
        except InputError as exc:  # disk full or the like: what was written stays playable
            self.error = str(exc)
        self.frames_written += sink.frames_written
        recording = Recording(sink.path, sink.frames_written, sink.codec)
        self.finished.append(recording)
        return recording

    def write(self, image: np.ndarray) -> None:
        with self._lock:
            sink = self._sink
            if sink is None:
                return
            try:
                sink.write(image)
                return
            except InputError as exc:  # the writer failed: stop this recording, keep the session
                self._sink = None
                self.error = str(exc)
        self._finalize(sink)

    def close(self) -> None:
        """The session is over: finalize a recording in progress."""
        self.stop()
