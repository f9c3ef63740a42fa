"""ONNX Runtime latency of the emotion model, against the same network in torch eager, same run.

    python benchmarks/bench_model.py [--model models/emotion.onnx] [--int8 models/emotion.int8.onnx]

One thread everywhere (ONNX Runtime intra-op and torch), because the live analyzer gives the
model one thread beside MediaPipe. The headline is one window at the model's default length,
batch 1: its median must be <= 1 ms for a landmark-only model, and <= 2.5 ms for a fused model,
whose timed call is everything the runtime adds per face per frame: cutting the aligned crop out
of a 640x360 frame, the crop encoder once and the temporal model over the window (exit status 1
over the limit). T=1 (a face's first frame), T=90 and batch 4 show how the cost scales. The torch
baseline is the architecture recorded in the model's metadata with fresh weights: latency does
not depend on the weight values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoview.realtime.classifier import EmotionClassifier  # noqa: E402

LIMIT_MS = 1.0
FUSED_LIMIT_MS = 2.5
FRAME = (360, 640)  # the sample videos' size: where fused models cut their crops from


def fake_mesh(spec) -> np.ndarray:
    """A (478, 3) mesh with the crop's anchor points where a face 150 px wide would have them:
    the warp's cost depends on the crop size, not on the face."""
    mesh = np.tile(np.array([320.0, 180.0, 0.0], np.float32), (478, 1))
    layout = spec.layout_def
    indices = layout.mp478_indices or range(478)
    pick = list(indices)
    for index in layout.right_eye:
        mesh[pick[index]] = (290.0, 160.0, 0.0)
    for index in layout.left_eye:
        mesh[pick[index]] = (350.0, 162.0, 0.0)
    mesh[pick[layout.nose_base]] = (321.0, 205.0, 0.0)
    return mesh


def fused_call(classifier, frame: np.ndarray):
    """What the pipeline runs per face per frame with a fused model: crop, then one model step."""
    spec = classifier.spec
    mesh = fake_mesh(spec)

    def call(windows: np.ndarray):
        crops = np.stack([spec.face_crop(frame, mesh) for _ in range(len(windows))])
        embeddings = np.zeros((len(windows), windows.shape[1], spec.embedding), np.float32)
        return classifier.step(windows, crops, embeddings)

    return call


def measure(call, windows: np.ndarray, runs: int, warmup: int) -> tuple[float, float]:
    """(median, p95) in milliseconds of `call(windows)`, after `warmup` untimed calls."""
    for _ in range(warmup):
        call(windows)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call(windows)
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e3), float(np.percentile(times, 95) * 1e3)


def torch_baseline(metadata: dict[str, str]):
    """The same network in torch eager, one thread; None when torch or the architecture is missing."""
    config = metadata.get("emoview.model_config")
    if not config:
        return None, "the model's metadata has no emoview.model_config"
    try:
        import torch

        from emoview.train.ensemble import network
    except ModuleNotFoundError as exc:
        return None, f"{exc.name} is not installed"
    torch.set_num_threads(1)
    net = network(json.loads(config)).eval()

    def call(windows: np.ndarray):
        with torch.inference_mode():
            x = torch.from_numpy(windows)
            if net.encoder is None:
                return net(x)
            b, t, size = len(windows), windows.shape[1], net.config.crop
            return net.step(x, torch.zeros(b, 1, size, size), torch.zeros(b, t, net.config.embedding))

    return call, "torch eager, 1 thread"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "models" / "emotion.onnx"), help="float32 model (default: %(default)s)")
    parser.add_argument("--int8", metavar="PATH", help="an int8 copy of the same model to compare")
    parser.add_argument("--runs", type=int, default=1000, help="timed calls per case (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first (default: %(default)s)")
    args = parser.parse_args(argv)

    if not Path(args.model).is_file():
        print(f"bench_model: no model at {args.model}; export one with `emoview export RUN --out {args.model}` or pass --model", file=sys.stderr)
        return 2
    fp32 = EmotionClassifier(args.model, threads=1)
    int8 = EmotionClassifier(args.int8, threads=1) if args.int8 else None
    fused = fp32.spec.appearance
    frame = np.random.default_rng(1).integers(0, 256, (*FRAME, 3), dtype=np.uint8)
    run_fp32 = fused_call(fp32, frame) if fused else fp32.predict
    run_int8 = None if int8 is None else (fused_call(int8, frame) if fused else int8.predict)
    limit = FUSED_LIMIT_MS if fused else LIMIT_MS
    baseline, baseline_name = torch_baseline(fp32.metadata)
    window, features = fp32.spec.window, fp32.spec.feature_size
    cases = [(window, 1), (1, 1), (90, 1), (window, 4)]
    rng = np.random.default_rng(0)

    print(f"model {args.model}: {features} features, {len(fp32.labels)} classes, default window T={window}")
    if fused:
        print(f"fused: each call cuts a {fp32.spec.crop}x{fp32.spec.crop} crop per face from a {FRAME[1]}x{FRAME[0]} frame, "
              "encodes it once and runs the temporal model (the torch column: the model step alone)")
    print(f"ONNX Runtime 1 thread; baseline: {baseline_name}; {args.runs} timed calls per case")
    header = f"{'case':<14}{'ORT median':>11}{'p95':>8}"
    header += f"{'torch':>9}{'torch/ORT':>10}" if baseline else ""
    header += f"{'int8':>9}{'p95':>8}{'int8/fp32':>10}" if int8 else ""
    print(header + "   (ms)")
    headline = None
    for length, batch in cases:
        windows = rng.standard_normal((batch, length, features)).astype(np.float32)
        median, p95 = measure(run_fp32, windows, args.runs, args.warmup)
        line = f"{f'T={length} B={batch}':<14}{median:>11.3f}{p95:>8.3f}"
        if baseline:
            torch_median, _ = measure(baseline, windows, max(args.runs // 4, 50), args.warmup // 4)
            line += f"{torch_median:>9.3f}{torch_median / median:>9.1f}x"
        if int8:
            q_median, q_p95 = measure(run_int8, windows, args.runs, args.warmup)
            line += f"{q_median:>9.3f}{q_p95:>8.3f}{q_median / median:>9.2f}x"
        print(line)
        headline = headline or (median, p95)
    verdict = "PASS" if headline[0] <= limit else "FAIL"
    what = "one face, one frame (crop + encoder + temporal model)" if fused else "one window"
    print(f"acceptance: {what} T={window} B=1, 1 thread: median {headline[0]:.3f} ms, p95 {headline[1]:.3f} ms (limit {limit:.1f} ms median): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
