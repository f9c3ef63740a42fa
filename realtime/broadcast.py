"""One analysis, many viewers: a Session in its own thread, publishing into latest-value slots.

The camera or video is opened once and analysed by one `Session`, exactly as in the live window
(same overlays, recording and timeline); instead of a window it hands each annotated frame to a
`Broadcast`. Viewers never touch the pipeline: they read the newest JPEG and the newest per-frame
update from `Slot`s, so any number of them, fast or slow, cost the analysis nothing but the one
JPEG encoding per frame (done in a thread of its own, and only while someone watches).
"""

from __future__ import annotations

import threading
from typing import Callable

import cv2
import numpy as np

from emoview.realtime.annotate import Overlay
from emoview.realtime.errors import EmoviewError
from emoview.realtime.feed import lower_thread_priority
from emoview.realtime.pipeline import Analyzer, FrameResult
from emoview.realtime.pushed_source import PushedSource
from emoview.realtime.recording_switch import RecordingSwitch
from emoview.realtime.session import RunStats, Session
from emoview.realtime.slot import Slot
from emoview.realtime.sources import Source
from emoview.realtime.timeline import TimelineBuilder

DECIMALS = 4


def frame_update(result: FrameResult, labels: tuple[str, ...], fps: float, latency_ms: float) -> dict:
    """One frame's result as plain data: what /events sends and /frame answers."""
    height, width = result.frame.image.shape[:2]
    return {
        "frame": result.frame.index,
        "t": round(result.frame.timestamp_ms / 1000.0, 3),
        "timestamp_ms": result.frame.timestamp_ms,
        "size": [width, height],
        "fps": round(fps, 1),
        "latency_ms": round(latency_ms, 1),
        "faces": [
            {
                "id": face.id,
                "box": [int(v) for v in face.box],
                "label": face.label,
                "confidence": round(face.confidence, DECIMALS),
                "probabilities": {name: round(float(p), DECIMALS) for name, p in zip(labels, face.probabilities)},
            }
            for face in result.faces
        ],
    }


class Broadcast:
    """The Session's window: keeps the newest annotated frame and encodes it as JPEG for viewers."""

    def __init__(self, jpeg_quality: int = 80) -> None:
        self.jpeg = Slot[bytes]()
        self.updates = Slot[dict]()
        self.stopping = False  # set to end the session at its next frame
        self._quality = jpeg_quality
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._image_seq = 0
        self._encoded_seq = 0
        self._viewers = 0
        self._encoder = threading.Thread(target=self._encode_loop, name="jpeg", daemon=True)
        self._encoder.start()

    # the Session's window interface -----------------------------------------------------------
    def show(self, image: np.ndarray) -> bool:
        with self._cond:
            self._image = image  # Overlay.draw made it for this frame: nobody else changes it
            self._image_seq += 1
            self._cond.notify_all()
        return not self.stopping

    def close(self) -> None:
        pass  # the last frame stays on show after the input ends; `shutdown` ends the viewers

    # viewers ------------------------------------------------------------------------------------
    def watch(self) -> "_Watching":
        """`with broadcast.watch():` around a viewer's stream: frames are encoded only while someone watches."""
        return _Watching(self)

    def _viewer(self, delta: int) -> None:
        with self._cond:
            self._viewers += delta
            self._cond.notify_all()

    def _encode_loop(self) -> None:
        lower_thread_priority()  # viewers may skip a frame; the analysis must not wait for them
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self.jpeg.closed or (self._viewers > 0 and self._image_seq > self._encoded_seq))
                if self.jpeg.closed:
                    return
                image, self._encoded_seq = self._image, self._image_seq
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
            if ok:
                self.jpeg.put(data.tobytes())

    def shutdown(self) -> None:
        """The server is stopping: every viewer's stream ends, and so does the encoder."""
        self.jpeg.close()
        self.updates.close()
        with self._cond:
            self._cond.notify_all()


class _Watching:
    def __init__(self, broadcast: Broadcast) -> None:
        self._broadcast = broadcast

    def __enter__(self) -> Broadcast:
        self._broadcast._viewer(+1)
        return self._broadcast

    def __exit__(self, *exc) -> None:
        self._broadcast._viewer(-1)


class LiveAnalysis:
    """Runs the Session in a background thread; the timeline and recording follow every frame.

    `stop()` ends it (at the next frame; a browser camera's wait for a frame is woken) and
    finalizes a recording in progress; the Session's own `finally` guarantees that too.
    """

    def __init__(self, source: Source, analyzer: Analyzer, overlay: Overlay, recordings_dir: str,
                 on_end: Callable[["LiveAnalysis"], None] | None = None) -> None:
        self.source = source
        self.on_end = on_end  # called from the analysis thread when the input ends or fails by itself
        self.labels = analyzer.labels
        self.broadcast = Broadcast()
        self.timeline = TimelineBuilder(analyzer.labels, source.fps)
        self.recorder = RecordingSwitch(recordings_dir, self._recording_fps)
        self.session = Session(source, analyzer, overlay, self.recorder, self.broadcast, on_result=self._publish)
        self.state = "starting"  # running | ended | stopped | error
        self.error: str | None = None
        self._lock = threading.Lock()  # the timeline: added to by the session, read by requests
        self._thread = threading.Thread(target=self._run, name="analysis", daemon=True)

    def _recording_fps(self) -> float:
        """A file's own rate when every frame is analysed; what actually arrives from a live source."""
        measured = self.session.fps.fps
        return measured if self.source.live and measured > 0 else self.source.fps

    def start(self) -> "LiveAnalysis":
        self.state = "running"
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.session.run()
            self.state = "stopped" if self.broadcast.stopping else "ended"
        except EmoviewError as exc:
            self.error, self.state = str(exc), "error"
        except Exception as exc:  # noqa: BLE001 - shown to viewers and reported; the server stays up
            self.error, self.state = f"{type(exc).__name__}: {exc}", "error"
        finally:
            self.updates_changed()
        if self.on_end is not None and self.state != "stopped":
            self.on_end(self)

    def _publish(self, result: FrameResult) -> None:
        with self._lock:
            self.timeline.add(result)
        stats = self.session.stats
        self.broadcast.updates.put(frame_update(result, self.labels, self.session.fps.fps, stats.latency.last))

    def updates_changed(self) -> None:
        """Re-publish the newest update so viewers see a change of state (ended, recording) at once."""
        _, update = self.broadcast.updates.get()
        self.broadcast.updates.put(dict(update or {}))

    def status(self) -> dict:
        """The session around the newest frame: state, recording, counts."""
        current = self.recorder.current
        return {
            "state": self.state,
            "error": self.error or self.recorder.error,
            "source": {"name": self.source.name, "kind": self.source.kind},
            "frames": self.session.stats.frames,
            "dropped": self.source.dropped,
            "recording": None if current is None else str(current.path),
            "recordings": [r.to_dict() for r in self.recorder.finished],
        }

    def timeline_data(self) -> dict:
        with self._lock:
            data = self.timeline.build(self.session.fps.fps, "end" if self.state == "ended" else "running")
        data["source"] = {"name": self.source.name, "kind": self.source.kind}
        return data

    def stop(self, timeout: float = 30.0) -> RunStats:
        self.broadcast.stopping = True
        if isinstance(self.source, PushedSource):
            self.source.end()
        self._thread.join(timeout)
        self.recorder.close()  # normally done by the Session already; a no-op then
        return self.session.stats
