"""`pip install .` (not editable) gives a working `emoview` that finds its shipped model anywhere."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_model_and_runs_from_another_directory(tmp_path, samples, face_model):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("emoview-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "models/emotion.onnx" in names and "realtime/cli.py" in names

    # install the wheel alone (dependencies come from this environment), then run it elsewhere
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "EMOVIEW_FACE_MODEL": str(face_model)}
    where = subprocess.run([sys.executable, "-c", "import realtime.classifier as c; print(c.default_model_path())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).resolve().is_relative_to(target.resolve())
    run = subprocess.run([str(target / "bin" / "emoview"), "--video", str(samples / "single_face.mp4"), "--no-display"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "72 frames (end of input), faces in 72" in run.stderr
