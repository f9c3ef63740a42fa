"""The emotion model at run time: an ONNX Runtime session plus the feature spec read from the file.

Input "features" is (batch, time, features) float32; output "probabilities" is (batch, classes).
The spec comes from the model's own metadata, so the runtime builds the features it was trained on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emoview.realtime.errors import ModelError
from emoview.realtime.spec import METADATA_KEY, FeatureSpec, SpecError

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


def default_model_path() -> Path:
    from emoview.models import DEFAULT_MODEL

    return DEFAULT_MODEL


class EmotionClassifier:
    """One ONNX Runtime session per process; `threads` is set explicitly so runs are comparable."""

    def __init__(self, path: str | os.PathLike | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path) if path else default_model_path()
        if not self.path.is_file():
            raise ModelError(f"emotion model not found at {self.path}; pass --model PATH to an emoview .onnx file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for every kind of bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path} is not a usable ONNX model ({first[:160]}); pass --model PATH to an emoview .onnx file") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if METADATA_KEY not in self.metadata:
            raise ModelError(
                f"{self.path} is an ONNX model without emoview's feature spec; export it with "
                "`emoview export` or pass --model PATH to an emoview model"
            )
        try:
            self.spec = FeatureSpec.from_json(self.metadata[METADATA_KEY])
        except SpecError as exc:
            raise ModelError(f"{self.path}: cannot use its feature spec ({exc}); update emoview or re-export the model") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != [INPUT_NAME]:
            raise ModelError(f"{self.path} takes inputs {names}, not [{INPUT_NAME!r}]; re-export it with `emoview export`")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities (batch, classes) for windows (batch, time, features) of equal length."""
        batch = np.ascontiguousarray(windows, dtype=np.float32)
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
