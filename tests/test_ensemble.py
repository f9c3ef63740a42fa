"""Several runs as one model (`emoview export RUN RUN`) and mirrored-crop averaging (`--flip`)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.spec import FeatureSpec
from emoview.train.ensemble import EnsembleConfig, EnsembleNet, combine, network
from emoview.train.model import EmotionNet, ModelConfig
from stepping import step_frames

FER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
SPEC = FeatureSpec(labels=FER, window=15, crop=48, embedding=8)


def emoview(*args):
    return subprocess.run([sys.executable, "-m", "emoview", *map(str, args)], capture_output=True, text=True, timeout=300)


def tiny(seed: int, channels=(8, 8, 16, 16), crop: int = 48, temperature: float = 1.0) -> EmotionNet:
    torch.manual_seed(seed)
    config = ModelConfig(features=SPEC.feature_size, classes=len(FER), conv_channels=(16, 32), lstm_hidden=16, layer_norm=False, crop=crop,
                         embedding=8 if crop else 0, encoder_channels=channels, temperature=temperature)
    net = EmotionNet(config)
    with torch.no_grad():  # BatchNorm statistics that are not the identity, as after training
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def save_run(folder, net: EmotionNet, spec: FeatureSpec, val_items: int = 40, seed: int = 0, held=("S005", "S010")):
    """A run folder as `emoview train` leaves it: best.pt and the validation items it scored."""
    from emoview.train.checkpoint import save

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    save({"model_config": net.config.to_dict(), "state_dict": net.state_dict(), "spec": spec.to_json(),
          "metrics": {"val_accuracy": 0.5}, "data_summary": {"val": {"items": val_items, "faces_not_found": 2},
                                                     "sources": {"ckplus": {"holdout_subjects": list(held)}}},
          "recipe": {"name": folder.name, "description": f"test run {folder.name}"}, "epoch": 1}, folder / "best.pt")
    arrays = {"windows": rng.standard_normal((val_items, 1, spec.feature_size)).astype(np.float32),
              "labels": np.arange(val_items) % len(FER)}
    if spec.crop:
        arrays["crops"] = rng.integers(0, 256, (val_items, spec.crop, spec.crop)).astype(np.uint8)
    np.savez_compressed(folder / "val_features.npz", **arrays)
    return folder


def test_flip_average_encodes_the_crop_and_its_mirror_image_and_only_at_inference():
    net = tiny(0)
    crops = torch.rand(3, 1, 48, 48)
    plain = net.embed(crops)
    net.config.flip_average = True
    mirrored = net.encoder(crops.flip(3))
    assert torch.allclose(net.embed(crops), (plain + mirrored) / 2, atol=1e-6)
    assert torch.allclose(net.embed(crops.flip(3)), net.embed(crops), atol=1e-6)  # a face and its mirror now agree
    net.train()
    torch.manual_seed(0)
    a = net.embed(crops)
    net.config.flip_average = False
    torch.manual_seed(0)
    assert torch.equal(a, net.embed(crops))  # training sees each (augmented) crop once


def test_an_ensemble_averages_its_members_calibrated_logits_and_keeps_their_embeddings_apart():
    a, b = tiny(0, temperature=0.5), tiny(1, channels=(8, 16, 16, 24), temperature=2.0)
    net = combine([a, b])
    assert isinstance(net, EnsembleNet) and net.config.embedding == 16
    x = torch.randn(2, 5, SPEC.feature_size)
    crop = torch.rand(2, 1, 48, 48)
    earlier = torch.randn(2, 5, 16)
    with torch.no_grad():
        probs, new = net.step(x, crop, earlier)
        pa, ea = a.step(x, crop, earlier[..., :8])
        pb, eb = b.step(x, crop, earlier[..., 8:])
    assert torch.equal(new, torch.cat([ea, eb], 1))
    mean = (torch.log(pa) + torch.log(pb)) / 2  # log-softmax of logits / T, up to a constant per row
    assert torch.allclose(probs, torch.softmax(mean, 1), atol=1e-5)
    # a checkpoint's model_config says which network it holds
    rebuilt = network(json.loads(json.dumps(net.config.to_dict())))
    assert isinstance(rebuilt, EnsembleNet) and rebuilt.config == net.config
    assert isinstance(network(a.config.to_dict()), EmotionNet)
    with pytest.raises(ValueError):
        EnsembleNet(EnsembleConfig((a.config, ModelConfig(features=10, classes=7))))


def test_two_runs_export_as_one_fused_model_that_steps_frame_by_frame(tmp_path):
    a = save_run(tmp_path / "narrow", tiny(0), SPEC)
    b = save_run(tmp_path / "wide", tiny(1, channels=(8, 16, 16, 24)), SPEC)
    out = tmp_path / "both.onnx"
    done = emoview("export", a, b, "--flip", "--out", out)  # bare --flip: every run's crops
    assert done.returncode == 0, done.stderr
    assert "embeddings[batch, time, 16]" in done.stdout and "parity" in done.stdout
    assert "metrics of the combined model" in done.stdout

    classifier = EmotionClassifier(out)
    assert classifier.spec.embedding == 16 and classifier.spec.crop == 48
    meta = classifier.metadata
    config, metrics = json.loads(meta["emoview.model_config"]), json.loads(meta["emoview.metrics"])
    assert len(config["members"]) == 2 and all(m["flip_average"] for m in config["members"])
    assert config["temperature"] == metrics["calibration"]["temperature"]  # refitted for the ensemble
    assert metrics["val"]["items"] == 40 and [m["checkpoint"] for m in json.loads(meta["emoview.members"])] == [
        str(a / "best.pt"), str(b / "best.pt")]
    assert json.loads(meta["emoview.epoch"]) == [1, 1]
    card = emoview("info", "--model", out, "--face-model", tmp_path / "none.task")
    assert card.returncode == 0 and "best epochs 1, 1" in card.stdout, card.stdout + card.stderr
    # frame by frame with kept embeddings == every frame's crop encoded in one window
    rng = np.random.default_rng(1)
    t = 4
    feats = rng.standard_normal((1, t, SPEC.feature_size)).astype(np.float32)
    crops = rng.integers(0, 256, (t, 48, 48)).astype(np.uint8)
    probs, kept = step_frames(classifier, feats, crops)
    again, _ = classifier.step(feats, crops[-1:], np.stack(kept)[None])
    assert np.allclose(probs, again, atol=1e-5)
    # a mirrored face gives the same embedding: the flip is inside the model file
    _, mirrored = classifier.step(feats[:, :1], crops[:1, :, ::-1].copy(), np.zeros((1, 1, 16), np.float32))
    assert np.allclose(mirrored[0], kept[0], atol=1e-4)


def test_runs_that_cannot_be_combined_are_refused_in_one_line(tmp_path):
    a = save_run(tmp_path / "a", tiny(0), SPEC)
    other = save_run(tmp_path / "other_val", tiny(1), SPEC, val_items=30)
    landmark_spec = FeatureSpec(labels=FER, window=15)
    landmarks = save_run(tmp_path / "landmarks", tiny(2, crop=0), landmark_spec)
    other_subjects = save_run(tmp_path / "other_subjects", tiny(3), SPEC, held=("S005", "S011"))
    for args, says in (((a, other), "validated on other items"), ((a, landmarks), "read faces differently"),
                       ((a, other_subjects), "held out other subjects than"),
                       ((landmarks, "--flip"), "--flip is for models that look at the face crop"),
                       ((a, "--flip", "2"), "runs are numbered 1 to 1")):
        done = emoview("export", *args, "--out", tmp_path / "x.onnx")
        assert done.returncode == 2 and says in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
        assert not (tmp_path / "x.onnx").exists()


def test_a_crop_only_network_skips_the_landmarks_it_was_trained_without():
    """`inputs = "crop"` scales every landmark feature to zero: at inference the first layer then
    reads the embedding alone, with the same outputs; a network that reads landmarks does not skip."""
    net, fused = tiny(0), tiny(0)
    net.set_input_stats(np.zeros(SPEC.feature_size), np.ones(SPEC.feature_size), np.zeros(SPEC.feature_size))
    assert net._crop_only() and not fused._crop_only()
    assert not net.train()._crop_only()  # training keeps the plain graph (autocast, dropout)
    net.eval()
    x, crops = torch.randn(3, 6, SPEC.feature_size), torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        skipped = net(x, crops)
        assert torch.equal(skipped, net(torch.zeros_like(x), crops))  # the landmarks are not read at all
        net._crop_only = lambda: False  # the long way: zeros through the whole first layer
        assert torch.allclose(skipped, net(x, crops), atol=1e-6)


def test_a_crop_only_run_exports_alone_and_the_runtime_feeds_it_as_any_fused_model(tmp_path):
    """Its graph never reads the landmarks, so the exporter drops that input; the file must keep it."""
    net = tiny(0)
    net.set_input_stats(np.zeros(SPEC.feature_size), np.ones(SPEC.feature_size), np.zeros(SPEC.feature_size))
    run = save_run(tmp_path / "crop_only", net, SPEC)
    out = tmp_path / "crop_only.onnx"
    done = emoview("export", run, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "features[batch, time, " in done.stdout and "parity" in done.stdout
    classifier = EmotionClassifier(out)
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (1, 48, 48)).astype(np.uint8)
    probs, _ = classifier.step(rng.standard_normal((1, 1, SPEC.feature_size)).astype(np.float32), crops,
                               np.zeros((1, 1, 8), np.float32))
    same, _ = classifier.step(np.zeros((1, 1, SPEC.feature_size), np.float32), crops, np.zeros((1, 1, 8), np.float32))
    assert np.allclose(probs, same) and np.isclose(probs.sum(), 1, atol=1e-5)


def test_int8_only_makes_the_checked_int8_model_the_output(tmp_path):
    a = save_run(tmp_path / "a", tiny(0), SPEC, val_items=64)
    out = tmp_path / "model.onnx"
    done = emoview("export", a, "--int8", "only", "--out", out)
    assert done.returncode == 0, done.stderr
    assert f"int8: {out} is now the int8 model" in done.stdout and not (tmp_path / "model.int8.onnx").exists()
    classifier = EmotionClassifier(out)  # the weights digest in its metadata matches: it loads
    assert "static int8" in classifier.metadata["emoview.quantization"] and classifier.spec == SPEC
