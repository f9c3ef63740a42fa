"""The emotion model shipped with emoview (see README.md in this folder)."""

from pathlib import Path

DEFAULT_MODEL = Path(__file__).with_name("emotion.onnx")
