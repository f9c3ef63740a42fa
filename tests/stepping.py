"""Helper for the fused-model tests: a face's frames classified one at a time, as the runtime does."""

from __future__ import annotations

import numpy as np


def step_frames(classifier, feats: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each frame's crop encoded once, its embedding kept and passed back with the next windows.
    Returns the last frame's probabilities and the kept embeddings."""
    kept: list[np.ndarray] = []
    embedding = classifier.spec.embedding
    for i in range(len(crops)):
        earlier = np.stack(kept + [np.zeros(embedding, np.float32)])[None]
        probs, new = classifier.step(feats[:, : i + 1], crops[i : i + 1], earlier)
        kept.append(new[0])
    return probs, kept
