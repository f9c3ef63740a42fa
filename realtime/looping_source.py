"""A video file played again from the start whenever it ends: a demo or kiosk that never runs dry.

Timestamps keep increasing across the restarts (the landmarker tracks in video time and refuses
time that goes back): after the first pass the file's own times repeat, so `VideoSource` counts
them from the frame index instead.
"""

from __future__ import annotations

import cv2

from emoview.realtime.sources import VideoSource


class LoopingVideoSource(VideoSource):
    def __init__(self, path, paced: bool = True) -> None:
        super().__init__(path, paced=paced)
        self.passes = 1

    def _read(self):
        got = super()._read()
        if got is None and self.frames_read > 0 and self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0):
            self.passes += 1
            got = super()._read()
        return got
