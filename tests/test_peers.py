"""The every-face benchmark's plumbing (benchmarks/peers): it must skip cleanly without fer's venv,
report a broken fer as an error row instead of dying, and divide the right numbers. Speed is not
asserted; the real run is `python benchmarks/run_benchmarks.py --sections every-face`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from peers import every_face  # noqa: E402


def test_without_fers_venv_the_section_is_skipped_with_the_command_that_builds_it(tmp_path):
    section = every_face.run_every_face(argparse.Namespace(fer_venv=tmp_path / "no-venv"))
    assert set(section) == {"skipped"}
    assert "build_fer_venv.sh" in section["skipped"] and str(tmp_path / "no-venv") in section["skipped"]
    text = "\n".join(every_face.markdown(section))
    assert "Skipped" in text and "build_fer_venv.sh" in text


def test_a_python_without_fer_gives_an_error_row_not_a_crash(samples):
    runs = every_face.fer_runs(Path(sys.executable), samples / "single_face.mp4", 2, 5.0)  # emoview's venv has no fer
    assert set(runs) == {"haar", "mtcnn"}
    assert all(set(run) == {"error"} and "fer" in run["error"] for run in runs.values())


def row(fps, landmarker, haar, mtcnn):
    emoview = {"frames": 150, "end_to_end_fps": fps, "faces_per_frame": 3.9, "cpu": {"process_cpu_s": 3.0},
               "other_processes_cores": {"run": 0.1, "floor": 0.0}, "landmarker": {"fps": landmarker, "faces_per_frame": 4.0}}
    return {"video": "faces4_1280x720.mp4", "width": 1280, "height": 720, "faces": 4, "emoview": emoview,
            "fer_haar": haar, "fer_mtcnn": mtcnn}


def test_the_table_divides_emoviews_fps_by_each_peers_from_the_same_row():
    haar = {"fps": 10.0, "faces_per_frame_mean": 2.5, "on_faces_per_frame_mean": 2.0, "cpu_seconds_per_frame": 0.2}
    section = {"crowd_frames": 150, "fer_frames": 60, "fer_seconds": 15.0, "max_faces": 8,
               "rows": [row(30.0, 40.0, haar, {"error": "exit 1: boom"})]}
    assert every_face.ratios(section["rows"][0]) == {"landmarker": 0.75, "fer_haar": 3.0, "fer_mtcnn": None}
    lines = every_face.markdown(section)
    table_row = next(line for line in lines if line.startswith("| 1280x720"))
    cells = [c.strip() for c in table_row.strip("|").split("|")]
    assert cells[:3] == ["1280x720", "4", "30.0"] and cells[3] == "3.90" and cells[7] == "10.0" and cells[8] == "2.50 (2.00)"
    assert cells[-3:] == ["**0.75**", "**3.00**", "-"]
    assert any("fer mtcnn: exit 1: boom" in line for line in lines)


def test_the_torchvision_stand_in_keeps_what_torchvision_nms_keeps():
    """fer's venv gets a stand-in for torchvision's NMS (MTCNN's only use of it): same boxes kept,
    best score first, and batched NMS never lets one group suppress another."""
    import importlib.util

    import torch

    path = REPO / "benchmarks" / "peers" / "torchvision_stand_in" / "torchvision" / "ops" / "boxes.py"
    spec = importlib.util.spec_from_file_location("stand_in_boxes", path)
    boxes_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(boxes_module)
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9], [50, 50, 60, 60.0]])
    scores = torch.tensor([0.5, 0.9, 0.8, 0.4, 0.1])
    # IoU(0, 1) = 81/119 = 0.68, IoU(1, 3) = 72/118 = 0.61, IoU(0, 3) = 0.9: at 0.65 box 3 survives box 1
    assert boxes_module.nms(boxes, scores, 0.65).tolist() == [1, 2, 3, 4]
    assert boxes_module.nms(boxes, scores, 0.5).tolist() == [1, 2, 4]
    groups = torch.tensor([0, 1, 0, 1, 0])
    assert sorted(boxes_module.batched_nms(boxes, scores, groups, 0.5).tolist()) == [0, 1, 2, 4]
    assert boxes_module.batched_nms(boxes[:0], scores[:0], groups[:0], 0.5).tolist() == []


def test_fer_detections_count_on_a_face_once_and_only_when_their_centre_is_in_its_box():
    sys.path.insert(0, str(REPO / "benchmarks" / "peers"))
    import fer_fps  # imports nothing of fer until it measures

    truth = {"0": {"box": [0, 0, 100, 100], "visible": True}, "1": {"box": [200, 0, 300, 100], "visible": True},
             "2": {"box": None, "visible": False}}
    detections = [{"box": [10, 10, 80, 80]}, {"box": [20, 20, 60, 60]}, {"box": [90, 90, 80, 80]}, {"box": [210, 5, 60, 70]}]
    assert fer_fps.on_faces(detections, truth) == 2  # a second box on face 0 and one centred off both are false
