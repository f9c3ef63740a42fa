"""The emotion model at run time: an ONNX Runtime session plus the feature spec read from the file.

Two kinds of model file, told apart by their spec (and checked against their inputs):
- landmark-only: input "features" (batch, time, features) float32 -> "probabilities" (batch, classes);
- fused (spec.crop > 0): inputs "features", "crop" (batch, 1, N, N) the newest frame's aligned grey
  face crop in 0..1, and "embeddings" (batch, time, E) the embeddings the model returned for the
  window's earlier frames (the last row is ignored); outputs "probabilities" and "embedding"
  (batch, E), the newest frame's, for the caller to keep. So each crop goes through the encoder once.
The spec comes from the model's own metadata, so the runtime builds the features it was trained on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emoview.realtime.errors import ModelError
from emoview.realtime.spec import METADATA_KEY, FeatureSpec, SpecError
from emoview.realtime.weights import verify_weights

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
CROP_INPUT = "crop"
EMBEDDINGS_INPUT = "embeddings"
EMBEDDING_OUTPUT = "embedding"


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
        verify_weights(self.path, self.metadata)
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
        expected = [INPUT_NAME, CROP_INPUT, EMBEDDINGS_INPUT] if self.spec.appearance else [INPUT_NAME]
        if names != expected:
            raise ModelError(f"{self.path} takes inputs {names}, not {expected}; re-export it with `emoview export`")
        self._outputs = [OUTPUT_NAME, EMBEDDING_OUTPUT] if self.spec.appearance else [OUTPUT_NAME]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    def predict(self, windows: np.ndarray, crops: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (batch, classes) for windows (batch, time, features) of equal length.

        A fused model also needs `crops` (batch, N, N) uint8; each window is then taken as a face
        held still (its crop's embedding for every frame): right for stills, where T is 1."""
        if not self.spec.appearance:
            batch = np.ascontiguousarray(windows, dtype=np.float32)
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        if crops is None:
            raise ValueError("this model also looks at the face: pass its aligned crops")
        b, t = windows.shape[:2]
        if t == 1:
            return self.step(windows, crops, np.zeros((b, 1, self.spec.embedding), np.float32))[0]
        _, embedding = self.step(windows[:, :1], crops, np.zeros((b, 1, self.spec.embedding), np.float32))
        return self.step(windows, crops, np.repeat(embedding[:, None], t, axis=1))[0]

    def step(self, windows: np.ndarray, crops: np.ndarray, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fused model on the newest frame of each window: (probabilities, the newest frame's
        embedding). `crops` (batch, N, N) uint8 are the newest frames' crops, `embeddings`
        (batch, time, E) the earlier frames' embeddings (the last row is a placeholder)."""
        probabilities, embedding = self.session.run(self._outputs, fused_feeds(windows, crops, embeddings))
        return probabilities, embedding


def fused_feeds(windows: np.ndarray, crops: np.ndarray, embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """A fused model's inputs from windows (batch, time, F), uint8 crops (batch, N, N) and earlier
    embeddings (batch, time, E): the one place that says how crops enter the graph (0..1, a channel axis)."""
    return {
        INPUT_NAME: np.ascontiguousarray(windows, dtype=np.float32),
        CROP_INPUT: (np.asarray(crops, dtype=np.float32) * (1.0 / 255.0))[:, None],
        EMBEDDINGS_INPUT: np.ascontiguousarray(embeddings, dtype=np.float32),
    }
