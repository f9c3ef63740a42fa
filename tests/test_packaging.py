"""The wheel owns one import name, `emoview`, and works from any folder, even beside a user's own
`models.py` and `train.py` (which used to shadow emoview's top-level `models` and `train`)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_owns_only_emoview_and_runs_beside_user_modules(tmp_path, samples, face_model):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("emoview-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "emoview/models/emotion.onnx" in names and "emoview/realtime/commands/cli.py" in names
    assert "emoview/models/emotion.onnx.sha256" in names  # the shipped model is checked against it
    assert "emoview/train/recipes/fer2013.toml" in names
    assert {f"emoview/realtime/web/{page}" for page in ("index.html", "app.js", "style.css")} <= set(names)  # emoview serve's page
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"emoview"}, tops
    assert not any("/tests/" in n or "/benchmarks/" in n for n in names)

    # a clean venv that sees this environment's dependencies (a plain path entry: not its .pth
    # files, so the editable emoview of this checkout stays invisible), with only the wheel installed
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    shown = subprocess.run([str(python), "-m", "pip", "show", "-f", "emoview"], capture_output=True, text=True, check=True).stdout
    files = [line.strip() for line in shown.split("Files:", 1)[1].splitlines() if line.strip()]
    outside = [f for f in files if not f.startswith(("emoview/", "emoview-")) and not f.endswith("bin/emoview")]
    assert not outside, outside

    user = tmp_path / "user"
    user.mkdir()
    (user / "models.py").write_text("raise ImportError('the user models.py was imported')\n")
    (user / "train.py").write_text("raise ImportError('the user train.py was imported')\n")
    env = {**os.environ, "EMOVIEW_FACE_MODEL": str(face_model)}
    env.pop("PYTHONPATH", None)
    where = subprocess.run([str(python), "-c", "import emoview.realtime.classifier as c; print(c.default_model_path())"],
                           cwd=user, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(site.resolve())
    run = subprocess.run([str(venv / "bin" / "emoview"), "--video", str(samples / "single_face.mp4"), "--no-display"],
                         cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "72 frames (end of input), faces in 72" in run.stderr
