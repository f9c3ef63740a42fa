"""Overlays: small annotators with one `annotate(image, result)` method each, composed in order.

Sizes scale with the frame height, so the same overlay is readable on a 640x360 preview and on a
1920x1080 recording. Annotators draw in place: `draw()` copies the frame once, so the decoded frame
stays untouched for anything else that holds it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from emoview.realtime.pipeline import FaceResult, FrameResult
from emoview.realtime.placement import Placement, Rect, place_panels, union

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)

# BGR colours by emotion; names not listed get a stable colour from their hash.
EMOTION_COLOURS = {
    "angry": (40, 40, 220),
    "anger": (40, 40, 220),
    "disgust": (60, 150, 60),
    "fear": (170, 80, 150),
    "happy": (0, 200, 255),
    "neutral": (170, 170, 170),
    "sad": (200, 120, 40),
    "surprise": (0, 140, 255),
    "shock": (0, 140, 255),
    "contempt": (120, 120, 60),
}


def colour_for(label: str) -> tuple[int, int, int]:
    known = EMOTION_COLOURS.get(label.lower())
    if known:
        return known
    h = zlib.crc32(label.encode())
    return (64 + h % 192, 64 + (h >> 8) % 192, 64 + (h >> 16) % 192)


@dataclass(frozen=True)
class Style:
    """Line widths and text sizes for one frame height."""

    scale: float
    thickness: int
    pad: int

    @classmethod
    def for_height(cls, height: int) -> "Style":
        scale = max(height / 600.0, 0.75)
        return cls(scale=scale, thickness=max(1, round(2 * scale)), pad=max(2, round(6 * scale)))


def text_box(image: np.ndarray, text: str, origin: tuple[int, int], style: Style, colour, text_colour=WHITE, size: float = 0.6) -> tuple[int, int]:
    """Text on a filled box whose top-left is `origin`, kept inside the image; returns its size."""
    font_scale = size * style.scale
    thickness = max(1, style.thickness - 1)
    (w, h), base = cv2.getTextSize(text, FONT, font_scale, thickness)
    bw, bh = w + 2 * style.pad, h + base + 2 * style.pad
    x = int(min(max(origin[0], 0), max(image.shape[1] - bw, 0)))
    y = int(min(max(origin[1], 0), max(image.shape[0] - bh, 0)))
    cv2.rectangle(image, (x, y), (x + bw, y + bh), colour, cv2.FILLED)
    cv2.putText(image, text, (x + style.pad, y + style.pad + h), FONT, font_scale, text_colour, thickness, cv2.LINE_AA)
    return bw, bh


def shade(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, alpha: float = 0.55) -> None:
    """Darken a rectangle so text on top of any picture stays readable."""
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 > x0 and y1 > y0:
        roi = image[y0:y1, x0:x1]
        roi[:] = (roi * (1.0 - alpha)).astype(np.uint8)


class BoxAnnotator:
    def annotate(self, image: np.ndarray, result: FrameResult, style: Style) -> None:
        for face in result.faces:
            x0, y0, x1, y1 = face.box
            cv2.rectangle(image, (x0, y0), (x1, y1), colour_for(face.label), style.thickness, cv2.LINE_AA)


class LabelAnnotator:
    """'#id label 87%' above each box (below it when the box touches the top)."""

    def annotate(self, image: np.ndarray, result: FrameResult, style: Style) -> None:
        for face in result.faces:
            colour = colour_for(face.label)
            x0, y0, _, _ = tag_rect(face, style, image.shape)
            text_box(image, tag_text(face), (x0, y0), style, colour, BLACK if sum(colour) > 450 else WHITE)


def tag_text(face: FaceResult) -> str:
    return f"#{face.id} {face.label} {face.confidence * 100:.0f}%"


def tag_rect(face: FaceResult, style: Style, shape: tuple[int, ...]) -> Rect:
    """Where `LabelAnnotator` puts a face's name tag (text_box keeps it inside the image)."""
    (w, h), base = cv2.getTextSize(tag_text(face), FONT, 0.6 * style.scale, max(1, style.thickness - 1))
    bw, bh = w + 2 * style.pad, h + base + 2 * style.pad
    x0, y0, _, y1 = face.box
    top = y0 - bh if y0 - bh >= 0 else y1
    x = int(min(max(x0, 0), max(shape[1] - bw, 0)))
    y = int(min(max(top, 0), max(shape[0] - bh, 0)))
    return (x, y, x + bw, y + bh)


class ProbabilityBarsAnnotator:
    """One bar per class beside each face: the whole distribution, not just the winner.

    Panels are placed (`placement.place_panels`) so none covers a face, its name tag or another
    panel; where a full panel has no room, a compact one shows the label and its bar under the box.
    """

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        # text metrics per style: measuring every label's width for each row of each frame was
        # half of all drawing time (76 getTextSize calls a frame for one face)
        self._known_metrics: dict[Style, tuple[float, int, int, int, int]] = {}

    def annotate(self, image: np.ndarray, result: FrameResult, style: Style) -> None:
        for face, placement in zip(result.faces, self.layout(result, style, image.shape)):
            if placement.compact:
                self._compact(image, face, placement.rect, style)
            else:
                self._panel(image, face, placement.rect, style)

    def _metrics(self, style: Style) -> tuple[float, int, int, int, int]:
        if style not in self._known_metrics:
            self._known_metrics[style] = self._measure(style)
        return self._known_metrics[style]

    def _measure(self, style: Style) -> tuple[float, int, int, int, int]:
        font_scale = 0.55 * style.scale
        thickness = max(1, style.thickness - 1)
        name_w = max(cv2.getTextSize(name, FONT, font_scale, thickness)[0][0] for name in self.labels)
        (_, text_h), _ = cv2.getTextSize("Ag", FONT, font_scale, thickness)
        return font_scale, thickness, name_w, text_h, text_h + 2 * style.pad

    def sizes(self, style: Style) -> tuple[tuple[int, int], tuple[int, int]]:
        """(width, height) of the full panel and of the compact one."""
        _, _, name_w, _, row = self._metrics(style)
        bar_w = int(100 * style.scale)
        full = (name_w + bar_w + 3 * style.pad, row * len(self.labels) + style.pad)
        compact = (name_w + bar_w // 2 + 3 * style.pad, row + style.pad)
        return full, compact

    def layout(self, result: FrameResult, style: Style, shape: tuple[int, ...]) -> list[Placement]:
        """Each face's panel, in the order of `result.faces`."""
        full, compact = self.sizes(style)
        areas = [union(tuple(int(v) for v in face.box), tag_rect(face, style, shape)) for face in result.faces]
        return place_panels((shape[1], shape[0]), areas, full, compact, gap=style.pad)

    def _row(self, image, x: int, y: int, name: str, p: float, bar_w: int, style: Style, chosen: bool) -> None:
        font_scale, thickness, name_w, text_h, row = self._metrics(style)
        cv2.putText(image, name, (x + style.pad, y + text_h + style.pad // 2), FONT, font_scale, WHITE, thickness, cv2.LINE_AA)
        bx = x + 2 * style.pad + name_w
        top, bottom = y + style.pad // 2, y + row - style.pad // 2
        filled = int(bar_w * float(np.clip(p, 0.0, 1.0)))
        cv2.rectangle(image, (bx, top), (bx + bar_w, bottom), (90, 90, 90), 1)
        if filled > 0:
            cv2.rectangle(image, (bx, top), (bx + filled, bottom), colour_for(name), cv2.FILLED)
        if chosen:
            cv2.rectangle(image, (bx - 1, top - 1), (bx + bar_w + 1, bottom + 1), WHITE, 1)

    def _panel(self, image: np.ndarray, face: FaceResult, rect: Rect, style: Style) -> None:
        left, top, right, bottom = rect
        shade(image, left, top, right, bottom)
        row = self._metrics(style)[4]
        for i, (name, p) in enumerate(zip(self.labels, face.probabilities)):
            self._row(image, left, top + style.pad + i * row, name, p, int(100 * style.scale), style, name == face.label)

    def _compact(self, image: np.ndarray, face: FaceResult, rect: Rect, style: Style) -> None:
        left, top, right, bottom = rect
        if right <= left:
            return  # no room at all in this frame
        shade(image, left, top, right, bottom)
        p = float(face.probabilities[self.labels.index(face.label)]) if face.label in self.labels else face.confidence
        self._row(image, left, top + style.pad // 2, face.label, p, int(100 * style.scale) // 2, style, False)


class MeshAnnotator:
    """The landmarks as dots: shows what the model actually sees."""

    def annotate(self, image: np.ndarray, result: FrameResult, style: Style) -> None:
        h, w = image.shape[:2]
        size = max(1, round(style.scale * 1.5))  # dots of size x size pixels, set in one go
        for face in result.faces:
            xy = face.points[:, :2].astype(np.int32)
            for dx in range(size):
                for dy in range(size):
                    xs = np.clip(xy[:, 0] + dx, 0, w - 1)
                    ys = np.clip(xy[:, 1] + dy, 0, h - 1)
                    image[ys, xs] = (200, 255, 200)


def faces_text(result: FrameResult) -> str:
    count = len(result.faces)
    return "no face" if count == 0 else f"{count} face" + ("s" if count > 1 else "")


def media_time(timestamp_ms: float) -> str:
    """m:ss.s of a video's own clock."""
    seconds = max(timestamp_ms, 0.0) / 1000.0
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class HudAnnotator:
    """One line in the top-left corner. Live window: processing fps, end-to-end latency, faces.
    Recording: the video's own time and frame rate (what a viewer of the file sees), faces.
    Stills: which image, faces; no rate, as unrelated images have none."""

    def __init__(self, stills: bool = False) -> None:
        self.stills = stills

    def _line(self, image: np.ndarray, text: str, style: Style) -> None:
        text_box(image, text, (style.pad, style.pad), style, (30, 30, 30), WHITE, size=0.55)

    def annotate(self, image: np.ndarray, result: FrameResult, style: Style, fps: float = 0.0, latency_ms: float = 0.0) -> None:
        if self.stills:
            return self.annotate_media(image, result, style)
        self._line(image, f"{fps:4.1f} fps  {latency_ms:3.0f} ms  {faces_text(result)}", style)

    def annotate_media(self, image: np.ndarray, result: FrameResult, style: Style, media_fps: float = 0.0) -> None:
        if self.stills:
            text = f"image {result.frame.index + 1}  {faces_text(result)}"
        else:
            text = f"{media_time(result.frame.timestamp_ms)}  {media_fps:.4g} fps  {faces_text(result)}"
        self._line(image, text, style)


class Overlay:
    """All annotators in drawing order. `draw` returns an annotated copy of the frame with the live
    HUD; `draw_faces` without a HUD, to which `live_hud` or `media_hud` add theirs."""

    def __init__(self, labels: tuple[str, ...], mesh: bool = False, stills: bool = False) -> None:
        self.mesh = MeshAnnotator() if mesh else None
        self.bars = ProbabilityBarsAnnotator(labels)
        self.layers = [BoxAnnotator(), self.bars, LabelAnnotator()]
        self.hud = HudAnnotator(stills)
        self._style: tuple[int, Style] | None = None

    def style_for(self, height: int) -> Style:
        if self._style is None or self._style[0] != height:
            self._style = (height, Style.for_height(height))
        return self._style[1]

    def draw_faces(self, result: FrameResult) -> np.ndarray:
        image = result.frame.image.copy()
        style = self.style_for(image.shape[0])
        if self.mesh is not None:
            self.mesh.annotate(image, result, style)
        for layer in self.layers:
            layer.annotate(image, result, style)
        return image

    def live_hud(self, image: np.ndarray, result: FrameResult, fps: float, latency_ms: float) -> None:
        self.hud.annotate(image, result, self.style_for(image.shape[0]), fps, latency_ms)

    def media_hud(self, image: np.ndarray, result: FrameResult, media_fps: float) -> None:
        self.hud.annotate_media(image, result, self.style_for(image.shape[0]), media_fps)

    def draw(self, result: FrameResult, fps: float = 0.0, latency_ms: float = 0.0) -> np.ndarray:
        image = self.draw_faces(result)
        self.live_hud(image, result, fps, latency_ms)
        return image
