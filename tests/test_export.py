"""Export: a run folder -> ONNX with symbolic batch/time axes, full metadata, torch parity, int8."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from emoview.export.checkpoint import load_run
from emoview.export.onnx_export import ExportError, check_saved_graph, export_onnx
from emoview.export.parity import check_parity, ort_session
from emoview.realtime.classifier import INPUT_NAME, OUTPUT_NAME, EmotionClassifier
from emoview.realtime.commands.cli import main
from emoview.realtime.errors import ModelError
from emoview.realtime.spec import METADATA_KEY, FeatureSpec
from emoview.train.model import EmotionNet, ModelConfig

from conftest import FER_LABELS, REPO

SPEC = FeatureSpec(labels=FER_LABELS, window=15)
DATA_SUMMARY = {"train": {"fer2013": 120}, "val": {"fer2013": 70}, "ckplus_holdout_subjects": ["S005", "S010"]}


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable one-frame windows: each class shifts its own block of features."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(FER_LABELS), n)
    x = rng.standard_normal((n, 1, SPEC.feature_size)).astype(np.float32)
    for c in range(len(FER_LABELS)):
        x[labels == c, :, c * 40 : (c + 1) * 40] += 2.0
    return x, labels


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A run folder in training's format: a small network fitted for a few steps, and val features."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a shared 2-core machine make this fit ten times slower
    torch.manual_seed(0)
    config = ModelConfig(features=SPEC.feature_size, classes=len(FER_LABELS), conv_channels=(16, 32), lstm_hidden=16)
    net = EmotionNet(config)
    x, y = synthetic(256, seed=1)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(40):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net.logits(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimiser.step()
    net.eval()
    torch.set_num_threads(threads)
    vx, vy = synthetic(128, seed=2)
    with torch.no_grad():
        val_accuracy = float((net(torch.from_numpy(vx)).argmax(1).numpy() == vy).mean())
    run = tmp_path_factory.mktemp("run")
    torch.save(
        {
            "model_config": config.to_dict(),
            "state_dict": net.state_dict(),
            "spec": SPEC.to_json(),
            "metrics": {"val_accuracy": val_accuracy, "val_macro_f1": 0.5},
            "data_summary": DATA_SUMMARY,
            "recipe": {"name": "test", "epochs": 1},
            "epoch": 7,
        },
        run / "best.pt",
    )
    np.savez(run / "val_features.npz", windows=vx, labels=vy)
    return run


@pytest.fixture(scope="session")
def exported(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "emotion.onnx"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    return out


def test_parity_torch_vs_onnxruntime_at_T_1_15_90(run_dir, exported):
    model = load_run(run_dir).model
    session = ort_session(exported)
    rng = np.random.default_rng(42)
    for batch in (1, 4):
        for length in (1, 15, 90):
            x = rng.standard_normal((batch, length, SPEC.feature_size)).astype(np.float32)
            with torch.no_grad():
                expected = model(torch.from_numpy(x)).numpy()
            actual = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            assert np.abs(actual - expected).max() <= 1e-4, (batch, length)


def test_parity_check_fails_when_the_graph_differs(run_dir, tmp_path):
    run = load_run(run_dir)
    path = export_onnx(run.model, run.spec, tmp_path / "m.onnx")
    altered = EmotionNet(run.model.config)
    altered.load_state_dict(run.model.state_dict())
    with torch.no_grad():
        altered.head[1].bias[0] += 0.5  # one class only: a shift of all logits would cancel in softmax
    with pytest.raises(ExportError, match="differ by"):
        check_parity(altered.eval(), path, SPEC.feature_size)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("length", [1, 90])
def test_exported_model_accepts_T_1_and_90_at_batch_1_and_4(exported, batch, length):
    classifier = EmotionClassifier(exported)
    probs = classifier.predict(np.random.default_rng(0).standard_normal((batch, length, SPEC.feature_size)))
    assert probs.shape == (batch, len(FER_LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_time_axis_is_symbolic_in_the_saved_graph(exported):
    proto = onnx.load(str(exported))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[:2]] == ["batch", "time"]
    assert not dims[1].HasField("dim_value")
    assert dims[2].dim_value == SPEC.feature_size
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)


def test_graph_check_rejects_a_fixed_time_axis(run_dir, tmp_path):
    run = load_run(run_dir)
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(
        run.model,
        (torch.zeros(1, 15, SPEC.feature_size),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    with pytest.raises(ExportError, match="time axis is fixed"):
        check_saved_graph(path)


def test_metadata_round_trip(run_dir, exported):
    metadata = EmotionClassifier(exported).metadata
    checkpoint = torch.load(run_dir / "best.pt", weights_only=True)
    assert FeatureSpec.from_json(metadata[METADATA_KEY]) == SPEC
    assert json.loads(metadata["emoview.labels"]) == list(FER_LABELS)
    assert json.loads(metadata["emoview.window"]) == SPEC.window
    assert json.loads(metadata["emoview.data_summary"]) == DATA_SUMMARY
    assert json.loads(metadata["emoview.metrics"]) == checkpoint["metrics"]
    assert json.loads(metadata["emoview.recipe"]) == checkpoint["recipe"]
    assert ModelConfig.from_dict(json.loads(metadata["emoview.model_config"])) == ModelConfig.from_dict(checkpoint["model_config"])
    assert json.loads(metadata["emoview.opset"]) == 17
    assert json.loads(metadata["emoview.epoch"]) == 7
    created = datetime.fromisoformat(metadata["emoview.created"])
    assert created.utcoffset() == timedelta(0)
    assert datetime.now(timezone.utc) - created < timedelta(hours=1)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'version = "{metadata["emoview.version"]}"' in pyproject


def test_runtime_refuses_an_onnx_file_without_the_spec(tmp_path, capsys):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", [INPUT_NAME], [OUTPUT_NAME])],
        "plain",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", "time", 4])],
        [onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["batch", "time", 4])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "plain.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError) as caught:
        EmotionClassifier(path)
    assert "without emoview's feature spec" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert main(["predict", str(path), "--model", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emoview: error:") and "feature spec" in err[0]


def _corrupt_run(tmp_path: Path) -> Path:
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "best.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    return tmp_path / "corrupt"


def _foreign_run(tmp_path: Path) -> Path:
    (tmp_path / "foreign").mkdir()
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign" / "best.pt")
    return tmp_path / "foreign"


@pytest.mark.parametrize(
    "make_run, out, message",
    [
        (lambda tmp, run: tmp / "missing", "m.onnx", "does not exist"),
        (lambda tmp, run: tmp, "m.onnx", "no checkpoint best.pt"),
        (lambda tmp, run: _corrupt_run(tmp), "m.onnx", "not a readable checkpoint"),
        (lambda tmp, run: _foreign_run(tmp), "m.onnx", "not an emoview checkpoint"),
        (lambda tmp, run: run, "a_file/m.onnx", "cannot write"),
        (lambda tmp, run: run, "m.txt", "should end in .onnx"),
    ],
)
def test_export_user_errors_are_one_line(run_dir, tmp_path, capsys, make_run, out, message):
    (tmp_path / "a_file").write_text("a file where a folder should be")
    run = make_run(tmp_path, run_dir)
    assert main(["export", str(run), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("emoview: error:") and message in err[0]
    assert not list(tmp_path.glob("**/*.onnx*"))


def test_export_int8_in_a_subprocess_reports_the_accuracy_change(run_dir, tmp_path):
    out = tmp_path / "models" / "emotion.onnx"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "emoview", "export", str(run_dir), "--out", str(out), "--int8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "parity torch vs ONNX Runtime (T=1/15/90): max |Δ|" in done.stdout
    int8 = out.with_name("emotion.int8.onnx")
    assert int8.is_file() and int8.stat().st_size < out.stat().st_size
    assert "validation windows from" in done.stdout and "int8: accuracy" in done.stdout
    assert "int8: latency" in done.stdout
    classifier = EmotionClassifier(int8)
    report = re.search(r"int8: accuracy (\d\.\d+) vs float32 (\d\.\d+)", done.stdout)
    assert f"accuracy {float(report[1]):.3f} (float32 {float(report[2]):.3f}) on" in classifier.metadata["emoview.quantization"]
    assert classifier.predict(np.zeros((4, 90, SPEC.feature_size))).shape == (4, len(FER_LABELS))
    check_saved_graph(int8)


def test_runtime_modules_do_not_import_torch():
    code = "import sys, emoview.realtime.commands.predict, emoview.realtime.classifier; sys.exit('torch' in sys.modules or 'emoview.train' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO)
    assert done.returncode == 0


def test_bench_model_reports_latency_against_torch(exported):
    """The bench's plumbing (few runs: the 1 ms acceptance itself is measured by running the bench)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_model.py"), "--model", str(exported), "--runs", "20", "--warmup", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    assert "baseline: torch eager, 1 thread" in done.stdout
    assert [line.split()[:2] for line in lines if line.startswith("T=")] == [["T=15", "B=1"], ["T=1", "B=1"], ["T=90", "B=1"], ["T=15", "B=4"]]
    assert lines[-1].startswith("acceptance: one window T=15 B=1, 1 thread: median ")


def test_export_replaces_the_shipped_model_only_with_overwrite_and_records_its_sha256(run_dir, tmp_path, monkeypatch, capsys):
    from emoview.realtime.weights import record_path

    shipped = tmp_path / "models" / "emotion.onnx"
    shipped.parent.mkdir()
    shipped.write_bytes(b"the model we ship")
    monkeypatch.setattr("emoview.models.DEFAULT_MODEL", shipped)
    assert main(["export", str(run_dir), "--out", str(shipped)]) == 2
    assert "already exists; add --overwrite" in capsys.readouterr().err and shipped.read_bytes() == b"the model we ship"
    assert main(["export", str(run_dir), "--out", str(shipped), "--overwrite"]) == 0
    sha = hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert record_path(shipped).read_text() == f"{sha}  emotion.onnx\n"  # `sha256sum -c` format
    assert EmotionClassifier().path == shipped  # the default model loads: weights digest and file sha256 agree
