"""How steady a trained model is on real video, for several window lengths T.

    python -m emoview.train.stability RUN VIDEO... [--windows 1,5,10,15,30] [--cache DIR] [--face-model PATH]

Faces are tracked in every frame with MediaPipe in video mode (cached like `emoview extract`); at
each frame the model sees the last T frames, as the live analyzer does (shorter while the window
fills). Reported per T: how often the top class changes from one frame to the next (flips per
100 frames), the mean frame-to-frame change of the probability vector (total variation), and the
mean top probability. The sample videos carry no emotion labels: this measures steadiness, not
accuracy, and is how the default window was chosen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from emoview.train.checkpoint import load_run
from emoview.train.extract import default_cache
from emoview.train.features import batch_features
from emoview.train.sources import cached_arrays


@torch.no_grad()
def window_predictions(model, feats: np.ndarray, window: int) -> np.ndarray:
    """Probabilities at every frame from the last `window` frames (fewer at the start)."""
    rows = [feats[max(0, t - window + 1) : t + 1] for t in range(len(feats))]
    out = []
    for length in sorted({len(r) for r in rows}):
        idx = [i for i, r in enumerate(rows) if len(r) == length]
        probs = model(torch.from_numpy(np.stack([rows[i] for i in idx]))).numpy()
        out += list(zip(idx, probs))
    return np.stack([p for _, p in sorted(out, key=lambda item: item[0])])


def steadiness(probs: np.ndarray) -> dict:
    top = probs.argmax(axis=1)
    return {
        "flips_per_100": float(100 * np.mean(top[1:] != top[:-1])),
        "tv": float(0.5 * np.abs(np.diff(probs, axis=0)).sum(axis=1).mean()),
        "top_prob": float(probs.max(axis=1).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--windows", default="1,5,10,15,30")
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--face-model")
    args = parser.parse_args(argv)
    model, spec, _ = load_run(args.run)
    windows = [int(w) for w in args.windows.split(",")]
    entries = cached_arrays(args.videos, args.cache, args.face_model, "video")
    print("| video | faces | " + " | ".join(f"T={w} flips/100, TV, top p" for w in windows) + " |")
    for path, entry in zip(args.videos, entries):
        found = entry["found"].astype(bool)
        points = np.stack([spec.select_points(p) for p in entry["points"][found]])
        feats = batch_features(spec, points, entry["blendshapes"][found] if spec.blendshapes else None)
        cells = []
        for w in windows:
            s = steadiness(window_predictions(model, feats, w))
            cells.append(f"{s['flips_per_100']:.1f}, {s['tv']:.3f}, {s['top_prob']:.2f}")
        print(f"| {path.name} | {found.sum()}/{len(found)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
