"""Optional int8 copy of an exported model (ONNX Runtime quantization), kept only if it still works.

Landmark-only models: dynamic quantization stores weights as int8 and quantizes activations on
the fly. Conv is left in float32: ONNX Runtime's ConvInteger measured about twice as slow as its
float Conv on this network. The LSTM is quantized first; if that costs more than
MAX_ACCURACY_DROP (or, with no validation set, changes more than 1 - MIN_AGREEMENT of the top-1
answers), it is retried with the LSTM kept in float32, and if that fails too no int8 file is written.

Fused models: the crop encoder's convolutions are nearly all of a frame's cost, so they are
quantized statically (QDQ, per-channel int8 weights, uint8 activations whose ranges are
calibrated on real face crops), which ONNX Runtime runs as QLinearConv: measured about 2x faster than
float32 for the whole model on this CPU. Calibration uses the even-numbered validation items and
the accuracy check the odd-numbered ones, as the temperature calibration does.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from emoview.export.onnx_export import check_saved_graph, set_metadata
from emoview.export.parity import ort_session
from emoview.realtime.classifier import INPUT_NAME, OUTPUT_NAME

OP_CHOICES = (("LSTM", "MatMul", "Gemm"), ("MatMul", "Gemm"))
MAX_ACCURACY_DROP = 0.01
MIN_AGREEMENT = 0.99
RANDOM_WINDOWS = 512
TIMING_RUNS = 400


@dataclass
class EvalSet:
    """Windows to compare float32 and int8 on; labels only when they are real validation data."""

    windows: np.ndarray
    labels: np.ndarray | None
    source: str


@dataclass
class Int8Report:
    path: Path | None
    ops: tuple[str, ...] | None
    source: str
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    agreement: float = 0.0  # share of windows where int8 and float32 pick the same class
    max_abs_diff: float = 0.0
    fp32_ms: float = 0.0
    int8_ms: float = 0.0
    fp32_bytes: int = 0
    int8_bytes: int = 0
    rejected: list[str] = field(default_factory=list)  # op sets tried and why they were refused

    def lines(self) -> list[str]:
        """What the user should know, one fact per line."""
        out = []
        for reason in self.rejected:
            out.append(f"int8: {reason}")
        if self.path is None:
            out.append("int8: no int8 model written: quantization breaks the network")
            return out
        out.append(f"int8: wrote {self.path} ({self.int8_bytes / 1e6:.2f} MB vs {self.fp32_bytes / 1e6:.2f} MB), quantized {', '.join(self.ops)}")
        if self.fp32_accuracy is not None:
            change = self.int8_accuracy - self.fp32_accuracy
            out.append(f"int8: accuracy {self.int8_accuracy:.4f} vs float32 {self.fp32_accuracy:.4f} ({change:+.4f}) on {self.source}")
        else:
            out.append(f"int8: accuracy change not measured: {self.source}; measure it with `emoview eval DIR --model {self.path}`")
        out.append(f"int8: same top-1 class as float32 on {self.agreement:.1%} of windows, max |Δp| {self.max_abs_diff:.4f}")
        verdict = "slower" if self.int8_ms > self.fp32_ms else "faster"
        out.append(f"int8: latency {self.int8_ms:.3f} ms vs float32 {self.fp32_ms:.3f} ms (1 window, 1 thread): int8 is {verdict}")
        if self.fp32_accuracy is not None and self.int8_accuracy < self.fp32_accuracy:
            out.append("int8: int8 is less accurate than float32")
        return out


def random_eval_set(features: int, window: int, seed: int = 0) -> EvalSet:
    rng = np.random.default_rng(seed)
    windows = rng.standard_normal((RANDOM_WINDOWS, window, features)).astype(np.float32)
    return EvalSet(windows, None, f"no validation feature set in the run folder; compared on {RANDOM_WINDOWS} random windows")


def quantize_int8(fp32_path: Path, out: Path, evaluation: EvalSet, window: int) -> Int8Report:
    """Write an int8 copy of `fp32_path` to `out` if it keeps the network's answers."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_probs = predict_all(fp32_path, evaluation.windows)
    report = Int8Report(None, None, evaluation.source, fp32_bytes=fp32_path.stat().st_size)
    if evaluation.labels is not None:
        report.fp32_accuracy = accuracy(fp32_probs, evaluation.labels)
    props = _metadata(fp32_path)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        for ops in OP_CHOICES:
            quiet = logging.getLogger().level
            logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
            try:
                quantize_dynamic(str(fp32_path), str(tmp), op_types_to_quantize=list(ops), weight_type=QuantType.QInt8)
            finally:
                logging.getLogger().setLevel(quiet)
            int8_probs = predict_all(tmp, evaluation.windows)
            agreement = float((int8_probs.argmax(1) == fp32_probs.argmax(1)).mean())
            int8_accuracy = accuracy(int8_probs, evaluation.labels) if evaluation.labels is not None else None
            if int8_accuracy is not None and report.fp32_accuracy - int8_accuracy > MAX_ACCURACY_DROP:
                report.rejected.append(f"quantizing {', '.join(ops)} costs {report.fp32_accuracy - int8_accuracy:.4f} accuracy; not used")
                continue
            if int8_accuracy is None and agreement < MIN_AGREEMENT:
                report.rejected.append(f"quantizing {', '.join(ops)} changes {1 - agreement:.1%} of top-1 answers; not used")
                continue
            measured = "" if int8_accuracy is None else (
                f"; accuracy {int8_accuracy:.3f} (float32 {report.fp32_accuracy:.3f}) on {len(evaluation.labels)} validation windows")
            _write_card(tmp, props, f"dynamic int8 weights ({', '.join(ops)}), onnxruntime{measured}")
            os.replace(tmp, out)
            report.path, report.ops, report.agreement, report.int8_accuracy = out, ops, agreement, int8_accuracy
            report.max_abs_diff = float(np.abs(int8_probs - fp32_probs).max())
            report.int8_bytes = out.stat().st_size
            report.fp32_ms = latency_ms(fp32_path, window, evaluation.windows.shape[2])
            report.int8_ms = latency_ms(out, window, evaluation.windows.shape[2])
            break
    finally:
        tmp.unlink(missing_ok=True)
    return report


@dataclass
class CropSet:
    """A fused model's validation items: one-frame windows, their face crops (uint8) and labels."""

    windows: np.ndarray  # (N, 1, F) float32
    crops: np.ndarray  # (N, S, S) uint8, as the runtime cuts them
    labels: np.ndarray
    source: str


def quantize_fused_int8(fp32_path: Path, out: Path, val: CropSet, max_drop: float = MAX_ACCURACY_DROP,
                        calibration_items: int = 512) -> Int8Report:
    """Write `out`, a copy of a fused model whose convolutions run in int8, if it costs at most
    `max_drop` accuracy on the odd-numbered validation items (calibrated on the even-numbered)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    props = _metadata(fp32_path)
    spec = json.loads(props["emoview.spec"])
    embedding = int(spec["embedding"])
    checked = np.arange(1, len(val.labels), 2)
    calibration = np.arange(0, len(val.labels), 2)[:calibration_items]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self):
            i = next(self.items, None)
            return None if i is None else _fused_feeds(val, np.array([i]), embedding)

    fp32_probs = _predict_fused(fp32_path, val, checked, embedding)
    report = Int8Report(None, ("Conv",), f"{len(checked)} odd-numbered validation items of {val.source} "
                        f"(activation ranges from {len(calibration)} even-numbered ones)", fp32_bytes=fp32_path.stat().st_size)
    report.fp32_accuracy = accuracy(fp32_probs, val.labels[checked])
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)
        try:
            quantize_static(str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().setLevel(quiet)
        int8_probs = _predict_fused(tmp, val, checked, embedding)
        int8_accuracy = accuracy(int8_probs, val.labels[checked])
        if report.fp32_accuracy - int8_accuracy > max_drop:
            report.rejected.append(f"quantizing the convolutions costs {report.fp32_accuracy - int8_accuracy:.4f} accuracy; not used")
            return report
        _write_card(tmp, props, f"static int8 convolutions (QDQ, per-channel weights, activations calibrated on {len(calibration)} "
                    f"face crops), onnxruntime; accuracy {int8_accuracy:.3f} (float32 {report.fp32_accuracy:.3f}) on the "
                    f"{len(checked)} odd-numbered validation items")
        os.replace(tmp, out)
        report.path, report.int8_accuracy = out, int8_accuracy
        report.agreement = float((int8_probs.argmax(1) == fp32_probs.argmax(1)).mean())
        report.max_abs_diff = float(np.abs(int8_probs - fp32_probs).max())
        report.int8_bytes = out.stat().st_size
        one = _fused_feeds(val, np.array([0]), embedding, window=int(spec["window"]))
        report.fp32_ms, report.int8_ms = _median_ms(fp32_path, one), _median_ms(out, one)
    finally:
        tmp.unlink(missing_ok=True)
    return report


def _write_card(path: Path, props: dict[str, str], quantization: str) -> None:
    """The card's metrics (`emoview.metrics`) are the float32 model's; the int8 copy keeps them and
    says in `emoview.quantization` what it measured itself."""
    proto = onnx.load(str(path))
    set_metadata(proto, {**props, "emoview.quantization": quantization})
    onnx.save(proto, str(path))
    check_saved_graph(path)


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _fused_feeds(val: CropSet, index: np.ndarray, embedding: int, window: int = 1) -> dict[str, np.ndarray]:
    """Inputs as the runtime builds them: crops scaled to 0..1, a window of `window` frames (the
    item's features repeated) and zero embeddings for the earlier frames."""
    from emoview.realtime.classifier import fused_feeds

    windows = np.repeat(val.windows[index], window, axis=1)
    return fused_feeds(windows, val.crops[index], np.zeros((len(index), window, embedding), np.float32))


def _predict_fused(path: Path, val: CropSet, index: np.ndarray, embedding: int, chunk: int = 256) -> np.ndarray:
    session = ort_session(path)
    parts = [session.run([OUTPUT_NAME], _fused_feeds(val, index[i : i + chunk], embedding))[0] for i in range(0, len(index), chunk)]
    return np.concatenate(parts)


def _median_ms(path: Path, feeds: dict[str, np.ndarray], runs: int = TIMING_RUNS) -> float:
    session = ort_session(path)
    for _ in range(50):
        session.run([OUTPUT_NAME], feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run([OUTPUT_NAME], feeds)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def predict_all(path: Path, windows: np.ndarray, chunk: int = 512) -> np.ndarray:
    session = ort_session(path)
    parts = [session.run([OUTPUT_NAME], {INPUT_NAME: windows[i : i + chunk]})[0] for i in range(0, len(windows), chunk)]
    return np.concatenate(parts)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def latency_ms(path: Path, window: int, features: int) -> float:
    """Median of one-window calls after a warm-up: a quick comparison, not the full bench."""
    x = np.random.default_rng(1).standard_normal((1, window, features)).astype(np.float32)
    return _median_ms(path, {INPUT_NAME: x})
