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
            text = f"#{face.id} {face.label} {face.confidence * 100:.0f}%"
            (_, h), base = cv2.getTextSize(text, FONT, 0.6 * style.scale, max(1, style.thickness - 1))
            height = h + base + 2 * style.pad
            x0, y0, _, y1 = face.box
            top = y0 - height if y0 - height >= 0 else y1
            colour = colour_for(face.label)
            text_box(image, text, (x0, top), style, colour, BLACK if sum(colour) > 450 else WHITE)


class ProbabilityBarsAnnotator:
    """One bar per class beside each face: the whole distribution, not just the winner."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels

    def annotate(self, image: np.ndarray, result: FrameResult, style: Style) -> None:
        for face in result.faces:
            self._panel(image, face, style)

    def _panel(self, image: np.ndarray, face: FaceResult, style: Style) -> None:
        font_scale = 0.55 * style.scale
        thickness = max(1, style.thickness - 1)
        name_w = max(cv2.getTextSize(name, FONT, font_scale, thickness)[0][0] for name in self.labels)
        (_, text_h), _ = cv2.getTextSize("Ag", FONT, font_scale, thickness)
        row = text_h + 2 * style.pad
        bar_w = int(100 * style.scale)
        width = name_w + bar_w + 3 * style.pad
        height = row * len(self.labels) + style.pad
        x0, y0, x1, _ = face.box
        gap = 2 * style.pad
        left = x1 + gap if x1 + gap + width <= image.shape[1] else x0 - gap - width
        left = int(min(max(left, 0), max(image.shape[1] - width, 0)))
        top = int(min(max(y0, 0), max(image.shape[0] - height, 0)))
        shade(image, left, top, left + width, top + height)
        for i, (name, p) in enumerate(zip(self.labels, face.probabilities)):
            y = top + style.pad + i * row
            colour = colour_for(name)
            cv2.putText(image, name, (left + style.pad, y + text_h + style.pad // 2), FONT, font_scale, WHITE, thickness, cv2.LINE_AA)
            bx = left + 2 * style.pad + name_w
            filled = int(bar_w * float(np.clip(p, 0.0, 1.0)))
            cv2.rectangle(image, (bx, y + style.pad // 2), (bx + bar_w, y + row - style.pad // 2), (90, 90, 90), 1)
            if filled > 0:
                cv2.rectangle(image, (bx, y + style.pad // 2), (bx + filled, y + row - style.pad // 2), colour, cv2.FILLED)
            if name == face.label:
                cv2.rectangle(image, (bx - 1, y + style.pad // 2 - 1), (bx + bar_w + 1, y + row - style.pad // 2 + 1), WHITE, 1)


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


class HudAnnotator:
    """fps, end-to-end latency and face count in the top-left corner; 'no face' when there is none."""

    def annotate(self, image: np.ndarray, result: FrameResult, style: Style, fps: float = 0.0, latency_ms: float = 0.0) -> None:
        count = len(result.faces)
        faces = "no face" if count == 0 else f"{count} face" + ("s" if count > 1 else "")
        text = f"{fps:4.1f} fps  {latency_ms:3.0f} ms  {faces}"
        text_box(image, text, (style.pad, style.pad), style, (30, 30, 30), WHITE, size=0.55)


class Overlay:
    """All annotators in drawing order; `draw` returns an annotated copy of the frame."""

    def __init__(self, labels: tuple[str, ...], mesh: bool = False) -> None:
        self.mesh = MeshAnnotator() if mesh else None
        self.layers = [BoxAnnotator(), ProbabilityBarsAnnotator(labels), LabelAnnotator()]
        self.hud = HudAnnotator()
        self._style: tuple[int, Style] | None = None

    def _style_for(self, height: int) -> Style:
        if self._style is None or self._style[0] != height:
            self._style = (height, Style.for_height(height))
        return self._style[1]

    def draw(self, result: FrameResult, fps: float = 0.0, latency_ms: float = 0.0) -> np.ndarray:
        image = result.frame.image.copy()
        style = self._style_for(image.shape[0])
        if self.mesh is not None:
            self.mesh.annotate(image, result, style)
        for layer in self.layers:
            layer.annotate(image, result, style)
        self.hud.annotate(image, result, style, fps, latency_ms)
        return image
