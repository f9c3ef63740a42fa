"""Shared fixtures: the real data in ../shared and a small exported emotion model."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOVIEW_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "data" / "samples"
FACE_MODEL = SHARED / "models" / "face_landmarker.task"
sys.path.insert(0, str(REPO / "tests" / "fixtures"))  # media generators: `import crowd`
FER_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"tests need the shared data folder at {SHARED} (or set EMOVIEW_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def samples(shared) -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def face_model(shared) -> Path:
    return FACE_MODEL


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    """An untrained network exported through the real export path: tests the plumbing, not accuracy."""
    import torch

    from emoview.export.onnx_export import export_onnx
    from emoview.realtime.spec import FeatureSpec
    from emoview.train.model import EmotionNet, ModelConfig

    torch.manual_seed(0)
    spec = FeatureSpec(labels=FER_LABELS, window=15)
    net = EmotionNet(ModelConfig(features=spec.feature_size, classes=len(FER_LABELS), conv_channels=(16, 32), lstm_hidden=16))
    return export_onnx(net, spec, tmp_path_factory.mktemp("model") / "random.onnx", {"purpose": "tests"})


@pytest.fixture(scope="session")
def real_face(face_model, samples):
    """A real MediaPipe face (points and blendshapes) from the sample photo."""
    import cv2

    from emoview.realtime.faces import FaceLandmarker

    with FaceLandmarker(face_model, video=False) as landmarker:
        faces = landmarker.detect(cv2.imread(str(samples / "single_face.jpg")))
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="session")
def fused_model(tmp_path_factory) -> Path:
    """An untrained fused model (landmarks + a 48x48 face crop), through the real export path."""
    import torch

    from emoview.export.onnx_export import export_onnx
    from emoview.realtime.spec import FeatureSpec
    from emoview.train.model import EmotionNet, ModelConfig

    torch.manual_seed(0)
    spec = FeatureSpec(labels=FER_LABELS, window=15, crop=48, embedding=8)
    config = ModelConfig(features=spec.feature_size, classes=len(FER_LABELS), conv_channels=(16, 32), lstm_hidden=16,
                         crop=48, embedding=8, encoder_channels=(8, 8, 16, 16))
    return export_onnx(EmotionNet(config), spec, tmp_path_factory.mktemp("fused") / "fused.onnx", {"purpose": "tests"})


@pytest.fixture(scope="session")
def crowd(shared, tmp_path_factory):
    """Made once from the real sample faces (tests/fixtures/crowd.py): a 6 s 1920x1080 video of 8
    faces 60-250 px tall (face 3 enters at 2 s, face 2 passes in front of face 4) and a group
    still of 7; `truth` and `still_truth` are their ground truth, also written beside them."""
    from crowd import make_crowd_video, make_group_still

    folder = tmp_path_factory.mktemp("crowd")
    video, still = folder / "crowd_1920x1080.mp4", folder / "group_1920x1080.jpg"
    return SimpleNamespace(video=video, truth=make_crowd_video(video), still=still, still_truth=make_group_still(still))
