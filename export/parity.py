"""Torch and ONNX Runtime must agree: the same random windows through both, for several lengths.

Lengths 1, 15 and 90 cover the first frame of a face, a typical window and a long clip, so a time
axis that was fixed or mis-traced shows up as an error or a difference, not as a quiet drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from emoview.export.onnx_export import ExportError
from emoview.realtime.classifier import CROP_INPUT, EMBEDDING_OUTPUT, EMBEDDINGS_INPUT, INPUT_NAME, OUTPUT_NAME

PARITY_LENGTHS = (1, 15, 90)
PARITY_BATCHES = (1, 4)
TOLERANCE = 1e-4


@dataclass
class ParityResult:
    max_abs_diff: float
    cases: dict[tuple[int, int], float]  # (batch, time) -> max |torch - onnx|


def ort_session(path: str | os.PathLike, threads: int = 1):
    """A CPU session with explicit threads, as the runtime and the bench use."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(
    model: torch.nn.Module,
    path: str | os.PathLike,
    features: int,
    lengths: tuple[int, ...] = PARITY_LENGTHS,
    batches: tuple[int, ...] = PARITY_BATCHES,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    crop: int = 0,
    embedding: int = 0,
) -> ParityResult:
    """Max |Δ| between torch and ONNX Runtime probabilities (and, for a fused model with a `crop`,
    the new frame's embedding); raises ExportError above `tolerance`."""
    session = ort_session(path)
    rng = np.random.default_rng(seed)
    cases = {}
    model = model.eval()
    for batch in batches:
        for length in lengths:
            windows = rng.standard_normal((batch, length, features)).astype(np.float32)
            feeds = {INPUT_NAME: windows}
            with torch.no_grad():
                if crop:
                    feeds[CROP_INPUT] = rng.random((batch, 1, crop, crop)).astype(np.float32)
                    feeds[EMBEDDINGS_INPUT] = rng.standard_normal((batch, length, embedding)).astype(np.float32)
                    probs, new = model.step(*(torch.from_numpy(feeds[k]) for k in (INPUT_NAME, CROP_INPUT, EMBEDDINGS_INPUT)))
                    expected = np.concatenate([probs.numpy(), new.numpy()], axis=1)
                else:
                    expected = model(torch.from_numpy(windows)).numpy()
            try:
                outputs = [OUTPUT_NAME, EMBEDDING_OUTPUT] if crop else [OUTPUT_NAME]
                actual = np.concatenate(session.run(outputs, feeds), axis=1)
            except Exception as exc:  # noqa: BLE001 - onnxruntime's errors: a shape the graph cannot take
                raise ExportError(f"ONNX Runtime cannot run the exported model at batch {batch}, T={length} ({str(exc).splitlines()[0][:160]}); this is a bug in export") from None
            if actual.shape != expected.shape:
                raise ExportError(f"exported model gives shape {actual.shape} at batch {batch}, T={length}, torch {expected.shape}")
            cases[(batch, length)] = float(np.abs(actual - expected).max())
    worst = max(cases.values())
    if not worst <= tolerance:  # also catches NaN
        where = max(cases, key=cases.get)
        raise ExportError(f"torch and ONNX Runtime differ by {worst:.2e} > {tolerance:.0e} (batch {where[0]}, T={where[1]}); the export is wrong")
    return ParityResult(worst, cases)
