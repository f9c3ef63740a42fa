"""The fused model: the aligned crop, the once-per-frame encoder, calibration, the FER+ scorer,
and both kinds of model through the real commands."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.crop import CANONICAL, align_crop, anchor_points, crop_transform
from emoview.realtime.layouts import LAYOUTS
from emoview.realtime.spec import FeatureSpec, SpecError
from stepping import step_frames

FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
MESH = LAYOUTS["mp478"]


def emoview(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


# -- the crop ----------------------------------------------------------------------------------


def test_training_and_runtime_cut_the_same_crop_of_the_same_face(shared, face_model):
    """Training's `still_crops` (cached points, the training path) and the runtime's
    `FeatureSpec.face_crop` (what predict and the live pipeline call) give identical pixels."""
    from emoview.realtime.faces import StillFaceFinder, read_image
    from emoview.train.sources import still_crops

    spec = FeatureSpec(labels=FER, crop=48, embedding=8)
    paths = sorted((shared / "data" / "fer2013" / "val" / "happy").iterdir())[:3]
    with StillFaceFinder(face_model) as finder:
        found = [finder.find(read_image(p))[0] for p in paths]
    training = still_crops(paths, np.stack([f.points for f in found]), spec)
    runtime = np.stack([spec.face_crop(read_image(p), f.points) for p, f in zip(paths, found)])
    assert training.shape == (3, 48, 48) and training.dtype == np.uint8
    assert np.array_equal(training, runtime)
    assert training.std() > 20  # a face, not a flat patch


def test_crop_undoes_rotation_scale_and_position(real_face, samples):
    """The same face turned by 25 degrees, shrunk and moved gives nearly the same crop."""
    image = cv2.imread(str(samples / "single_face.jpg"))
    h, w = image.shape[:2]
    warp = cv2.getRotationMatrix2D((w * 0.4, h * 0.6), 25, 0.7)
    moved = cv2.warpAffine(image, warp, (w, h), borderMode=cv2.BORDER_REPLICATE)
    points = real_face.points.copy()
    points[:, :2] = points[:, :2] @ warp[:, :2].T + warp[:, 2]
    a = align_crop(image, real_face.points, MESH, 48).astype(float)
    b = align_crop(moved, points, MESH, 48).astype(float)
    assert np.abs(a - b).mean() < 6  # interpolation only: a misaligned face differs by tens of levels
    # and the anchors land where the canonical face has them
    matrix = crop_transform(points, MESH, 48)
    placed = anchor_points(points, MESH) @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(placed - CANONICAL * 48).max() < 2.5


def test_spec_with_a_crop_round_trips_and_landmark_specs_stay_version_1():
    fused = FeatureSpec(labels=FER, crop=48, embedding=128)
    assert FeatureSpec.from_json(fused.to_json()) == fused and fused.version == 2
    plain = FeatureSpec(labels=FER)
    assert json.loads(plain.to_json())["version"] == 1 and "crop" not in json.loads(plain.to_json())
    with pytest.raises(SpecError):
        FeatureSpec(labels=FER, crop=48)  # a crop needs an embedding length
    with pytest.raises(SpecError):
        FeatureSpec.from_json(json.dumps({**json.loads(fused.to_json()), "version": 3}))


# -- the once-per-frame encoder -----------------------------------------------------------------


class Spy:
    """Wraps a fused classifier's `step` and keeps every call's inputs and outputs."""

    def __init__(self, classifier):
        self.inner, self.calls = classifier, []
        self.step_inner = classifier.step
        classifier.step = self.step

    def step(self, windows, crops, embeddings):
        probabilities, embedding = self.step_inner(windows, crops, embeddings)
        self.calls.append((windows.copy(), crops.copy(), embeddings.copy(), embedding.copy()))
        return probabilities, embedding


def test_each_frame_is_encoded_once_and_its_embedding_reused(fused_model, face_model, samples):
    from emoview.realtime.faces import FaceLandmarker
    from emoview.realtime.pipeline import Analyzer
    from emoview.realtime.sources import VideoSource

    classifier = EmotionClassifier(fused_model)
    spy = Spy(classifier)
    window = classifier.spec.window
    with FaceLandmarker(face_model) as landmarker, VideoSource(samples / "single_face.mp4") as source:
        analyzer = Analyzer(classifier, landmarker)
        for frames, frame in enumerate(source, 1):
            analyzer.analyze(frame)
            if frames == 30:
                break
    assert len(spy.calls) == 30  # one model call a frame: one face in every frame
    returned = []
    for k, (windows, crops, embeddings, new) in enumerate(spy.calls):
        assert crops.shape == (1, 48, 48)  # exactly one crop encoded per face per frame
        t = min(k + 1, window)
        assert windows.shape[1] == t and embeddings.shape[1] == t
        # the window's earlier rows are the embeddings the model returned on earlier frames, untouched
        earlier = np.stack(returned[-(t - 1):]) if t > 1 else np.zeros((0, new.shape[1]))
        assert np.array_equal(embeddings[0, :-1], earlier)
        returned.append(new[0])


def test_fused_step_over_a_window_equals_encoding_every_frame(fused_model):
    """Stepping frame by frame with kept embeddings gives the same probabilities as a model that
    encodes the whole window's crops at once (torch), so keeping embeddings loses nothing."""
    classifier = EmotionClassifier(fused_model)
    spec = classifier.spec
    rng = np.random.default_rng(1)
    t = 5
    feats = rng.standard_normal((1, t, spec.feature_size)).astype(np.float32)
    crops = rng.integers(0, 256, (t, 48, 48)).astype(np.uint8)
    probs, kept = step_frames(classifier, feats, crops)
    # each crop's embedding alone, then all of them in one window
    single = [classifier.step(feats[:, :1], crops[i : i + 1], np.zeros((1, 1, spec.embedding), np.float32))[1][0] for i in range(t)]
    assert np.allclose(np.stack(kept), np.stack(single), atol=1e-5)
    again, _ = classifier.step(feats, crops[-1:], np.stack(single)[None])
    assert np.allclose(probs, again, atol=1e-5)


# -- calibration -----------------------------------------------------------------------------------


def test_temperature_fixes_overconfidence_without_changing_a_prediction():
    from emoview.train.calibrate import calibrate, ece, rescale

    rng = np.random.default_rng(0)
    n, k = 4000, 7
    y = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k))
    logits[np.arange(n), y] += 1.5  # right about half the time...
    probs = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)  # ...and far too sure
    result = calibrate(probs, y)
    assert result["temperature"] > 2
    assert result["ece_after"] < result["ece_before"] / 3
    assert np.array_equal(rescale(probs, result["temperature"]).argmax(1), probs.argmax(1))
    assert ece(np.eye(k)[y], y) == 0.0


def test_exported_temperature_is_applied_by_the_runtime(tmp_path):
    import torch

    from emoview.export.onnx_export import export_onnx
    from emoview.train.model import EmotionNet, ModelConfig

    spec = FeatureSpec(labels=FER, window=3)
    torch.manual_seed(0)
    net = EmotionNet(ModelConfig(features=spec.feature_size, classes=7, conv_channels=(8, 8), lstm_hidden=8))
    x = np.random.default_rng(0).standard_normal((2, 3, spec.feature_size)).astype(np.float32)
    plain = EmotionClassifier(export_onnx(net, spec, tmp_path / "t1.onnx")).predict(x)
    net.config.temperature = 2.0
    softer = EmotionClassifier(export_onnx(net, spec, tmp_path / "t2.onnx")).predict(x)
    assert np.allclose(softer, np.exp(np.log(plain) / 2) / np.exp(np.log(plain) / 2).sum(1, keepdims=True), atol=1e-5)


# -- the FER+ scorer ------------------------------------------------------------------------------


def test_plurality_leaves_out_ties_and_non_emotions():
    from emoview.realtime.ferplus import left_out_reason, plurality, vote_distribution

    #                 neu hap sur sad ang dis fea con unk NF
    assert plurality([6, 0, 0, 4, 0, 0, 0, 0, 0, 0]) == "neutral"
    assert plurality([4, 0, 0, 4, 0, 0, 0, 0, 2, 0]) is None
    assert left_out_reason([4, 0, 0, 4, 0, 0, 0, 0, 2, 0]) == "tie"
    assert plurality([1, 0, 0, 0, 0, 0, 0, 0, 0, 9]) is None
    assert left_out_reason([1, 0, 0, 0, 0, 0, 0, 0, 0, 9]) == "not a face"
    assert left_out_reason([0, 0, 0, 0, 2, 0, 0, 8, 0, 0]) == "contempt"
    target = vote_distribution([5, 0, 0, 3, 0, 0, 0, 0, 2, 0], list(FER))
    assert np.allclose(target, [0, 0, 0, 0, 5 / 8, 3 / 8, 0])
    assert vote_distribution([0, 0, 0, 0, 0, 0, 1, 0, 4, 5], list(FER)) is None


def test_eval_scores_against_ferplus_votes_and_counts_what_it_left_out(tmp_path, shared, random_model, face_model):
    """Images copied under their FER2013 folders, with votes that say otherwise: the FER+ truth wins."""
    root = tmp_path / "fer" / "val"
    rows = []
    source = shared / "data" / "fer2013" / "val"
    picks = [  # folder, votes: neu hap sur sad ang dis fea con unk NF
("happy", [8, 2, 0, 0, 0, 0, 0, 0, 0, 0]),  # FER+: neutral
             ("happy", [0, 9, 1, 0, 0, 0, 0, 0, 0, 0]),  # FER+: happy
             ("sad", [5, 0, 0, 5, 0, 0, 0, 0, 0, 0]),  # a tie: left out
             ("angry", [0, 0, 0, 0, 1, 0, 0, 0, 0, 9])]  # not a face: left out
    columns = ["file", "label", "fer2013_row", "ferplus_neutral", "ferplus_happiness", "ferplus_surprise", "ferplus_sadness",
               "ferplus_anger", "ferplus_disgust", "ferplus_fear", "ferplus_contempt", "ferplus_unknown", "ferplus_NF"]
    for i, (folder, vote) in enumerate(picks):
        original = sorted((source / folder).iterdir())[i]
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(original, root / folder / original.name)
        rows.append([f"val/{folder}/{original.name}", folder, i, *vote])
    with open(tmp_path / "fer" / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    out = tmp_path / "eval.json"
    run = emoview("eval", root, "--labels", "ferplus", "--model", random_model, "--face-model", face_model, "--json", out)
    assert run.returncode == 0, run.stderr
    assert "2 images scored, 2 left out (not a face 1, tie 1)" in run.stderr
    result = json.loads(out.read_text())
    assert result["images"] == 2 and result["left_out"] == {"tie": 1, "not a face": 1}
    assert [item["true"] for item in result["items"]] == ["neutral", "happy"]
    for item in result["items"]:  # each image's probabilities, the label their top class
        assert item["face"] and abs(sum(item["probabilities"].values()) - 1.0) < 1e-4
        assert item["label"] == max(item["probabilities"], key=item["probabilities"].get)
    assert "folder_labels" in result


# -- both kinds of model, through the commands ---------------------------------------------------


@pytest.mark.parametrize("kind", ["landmarks", "fused"])
def test_both_model_kinds_run_live_and_on_stills(kind, random_model, fused_model, face_model, samples, tmp_path):
    model = random_model if kind == "landmarks" else fused_model
    live = emoview("--video", samples / "single_face.mp4", "--no-display", "--record", tmp_path / "out.mp4",
                   "--model", model, "--face-model", face_model)
    assert live.returncode == 0, live.stderr
    assert "72 frames (end of input), faces in 72" in live.stderr
    stills = emoview("predict", samples / "single_face.jpg", "--json", tmp_path / "p.json", "--model", model, "--face-model", face_model)
    assert stills.returncode == 0, stills.stderr
    item = json.loads((tmp_path / "p.json").read_text())["items"][0]
    assert item["face"] and abs(sum(item["probabilities"].values()) - 1) < 1e-4


def test_bench_model_times_the_whole_per_face_cost_of_a_fused_model(fused_model):
    """The bench's plumbing for fused models (few runs: the 2.5 ms acceptance is measured by running it)."""
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_model.py"
    done = subprocess.run([sys.executable, str(bench), "--model", str(fused_model), "--runs", "20", "--warmup", "5"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    assert "cuts a 48x48 crop per face from a 640x360 frame" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("acceptance: one face, one frame (crop + encoder + temporal model) T=15 B=1")
    assert "(limit 2.5 ms median)" in done.stdout


# -- training a fused model, end to end -----------------------------------------------------------


def test_a_fused_model_trains_exports_and_runs(tmp_path, shared, face_model, monkeypatch):
    """Tiny CK+ happy-vs-surprise with a crop: crops grid, calibration, export with parity, predict."""
    from emoview.realtime.commands.cli import main

    monkeypatch.setenv("EMOVIEW_FACE_MODEL", str(face_model))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text((Path(__file__).parent / "data" / "tiny_ckplus.toml").read_text())
    out = tmp_path / "run"
    fused = ["--set", "spec.crop=48", "--set", "spec.embedding=8", "--set", "model.encoder_channels=[8, 8, 16, 16]",
             "--set", "model.conv_channels=[16, 32]", "--set", "model.lstm_hidden=16", "--set", "train.batch_size=32"]
    assert main(["train", str(recipe), "--out", str(out), "--cache", str(tmp_path / "cache"), "--data", str(shared / "data"),
                 "--limit", "300", *fused]) == 0
    assert (out / "crops_train.png").stat().st_size > 10_000
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"temperature", "ece_before", "ece_after"} <= set(metrics["calibration"])
    model_file = tmp_path / "fused.onnx"
    export = emoview("export", out, "--out", model_file)
    assert export.returncode == 0, export.stderr
    assert "crop[batch, 1, 48, 48]" in export.stdout and "parity" in export.stdout
    classifier = EmotionClassifier(model_file)
    assert classifier.spec.crop == 48 and classifier.labels == ("happy", "surprise")
    happy = sorted((shared / "data" / "ckplus48" / "happy").iterdir())[:2]
    run = emoview("predict", *happy, "--json", "-", "--model", model_file, "--face-model", face_model)
    assert run.returncode == 0, run.stderr
    assert [item["face"] for item in json.loads(run.stdout)["items"]] == [True, True]


def _face_crops(shared, count: int) -> np.ndarray:
    """Real 48x48 grey faces (CK+ stills are already cut that way): what the encoder sees live."""
    files = sorted((shared / "data" / "ckplus48").glob("*/*.png"))[:count]
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])


@pytest.mark.parametrize("max_drop", [1.0, -1.0])
def test_int8_copy_of_a_fused_model_runs_its_convolutions_in_int8_or_is_refused(fused_model, shared, tmp_path, max_drop):
    import onnx

    from emoview.export.quantize import CropSet, quantize_fused_int8

    crops = _face_crops(shared, 64)
    rng = np.random.default_rng(0)
    spec = EmotionClassifier(fused_model).spec
    windows = rng.standard_normal((len(crops), 1, spec.feature_size)).astype(np.float32)
    fp32 = EmotionClassifier(fused_model)
    labels = fp32.step(windows, crops, np.zeros((len(crops), 1, spec.embedding), np.float32))[0].argmax(1)
    out = tmp_path / "fused.int8.onnx"
    report = quantize_fused_int8(fused_model, out, CropSet(windows, crops, labels, "ck+ crops"), max_drop=max_drop, calibration_items=16)
    if max_drop < 0:  # any change at all is over the bound: nothing written, and the report says why
        assert report.path is None and not out.exists() and not list(tmp_path.iterdir())
        assert "not used" in "\n".join(report.lines())
        return
    assert report.path == out and report.fp32_accuracy == 1.0 and 0.0 < report.agreement <= 1.0
    graph = onnx.load(str(out)).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convs) >= 8 and all(set(node.input[:2]) <= dequantized for node in convs)  # int8 input and weights
    int8 = EmotionClassifier(out)  # loads: the weights digest was recomputed, the spec carried over
    assert int8.spec == spec and "static int8" in int8.metadata["emoview.quantization"]
    assert f"accuracy {report.int8_accuracy:.3f} (float32 1.000) on the 32 odd-numbered" in int8.metadata["emoview.quantization"]
    probabilities, embedding = int8.step(windows[:4], crops[:4], np.zeros((4, 1, spec.embedding), np.float32))
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-4) and embedding.shape == (4, spec.embedding)


def test_the_shipped_model_is_the_fused_one_with_its_calibration():
    classifier = EmotionClassifier()
    assert classifier.spec.appearance and classifier.spec.crop == 48
    config = json.loads(classifier.metadata["emoview.model_config"])
    metrics = json.loads(classifier.metadata["emoview.metrics"])
    assert config["temperature"] == metrics["calibration"]["temperature"] != 1.0


def test_stage_two_without_stage_one_is_refused_before_loading_data(tmp_path):
    run = emoview("train", "fer2013", "--out", tmp_path / "run", "--set", f'train.encoder_from="{tmp_path / "none.pt"}"')
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "train stage one first" in run.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("encoder_lr", [0.0, 0.1])
def test_stage_two_freezes_the_stage_one_encoder_or_fine_tunes_it_slower(tmp_path, encoder_lr):
    """encoder_lr = 0: the encoder stage one learned is loaded and left alone; otherwise it learns at
    that share of the rate while the layers above learn at the full rate."""
    import torch

    from emoview.train import checkpoint
    from emoview.train.config import TrainConfig
    from emoview.train.model import EmotionNet, ModelConfig
    from emoview.train.trainer import _encoder_from, _parameter_groups

    config = ModelConfig(features=10, classes=3, crop=48, embedding=8, encoder_channels=(8, 8, 16, 16),
                         conv_channels=(16, 16), lstm_hidden=8)
    stage_one = EmotionNet(config)
    checkpoint.save({"state_dict": stage_one.state_dict()}, tmp_path / "best.pt")
    model = EmotionNet(config)
    cfg = TrainConfig(lr=1e-3, encoder_from=str(tmp_path / "best.pt"), encoder_lr=encoder_lr)
    _encoder_from(model, tmp_path / "best.pt", frozen=encoder_lr == 0)
    for mine, theirs in zip(model.encoder.state_dict().values(), stage_one.encoder.state_dict().values()):
        assert torch.equal(mine, theirs)
    optimizer = torch.optim.AdamW(_parameter_groups(model, cfg), lr=cfg.lr)
    encoder = {id(p) for p in model.encoder.parameters()}
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert all(rates[id(p)] == cfg.lr for p in model.parameters() if id(p) not in encoder)
    if encoder_lr:
        assert all(rates[id(p)] == pytest.approx(1e-4) for p in model.encoder.parameters())
    else:
        assert not encoder & set(rates) and not any(p.requires_grad for p in model.encoder.parameters())
