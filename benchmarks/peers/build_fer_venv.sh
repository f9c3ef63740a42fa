#!/usr/bin/env bash
# Build the offline venv that runs fer (https://github.com/justinshenk/fer), the peer emoview's
# "every face" benchmark is measured against. fer is never a project dependency: it lives in
# its own venv, outside the repository, and benchmarks/run_benchmarks.py calls it there.
#
#     benchmarks/peers/build_fer_venv.sh [VENV_DIR]     # default: ~/.cache/emoview/peers/fer-venv
#
# Why each step (fer 25.10.3 asks for tensorflow, opencv-contrib-python, facenet-pytorch, ...):
# - torch 2.13.0 first: on our machines it is a local CPU wheel; facenet-pytorch pins torch<2.3,
#   which would pull gigabytes, so facenet-pytorch and fer go in with --no-deps.
# - torchvision: a stand-in (torchvision_stand_in/, see below) for the two functions facenet uses.
# - tensorflow-cpu, not tensorflow: fer's emotion model runs on TF Lite; no CUDA wheels.
# - opencv-contrib-python<5: OpenCV 5.0 ships no Haar cascades (cv2.data), fer's default detector.
# - setuptools<81: fer loads its model files through pkg_resources.
# - the rest of fer's requirements as it states them (moviepy<2 is only for its audio features).
set -euo pipefail
VENV=${1:-${EMOVIEW_FER_VENV:-$HOME/.cache/emoview/peers/fer-venv}}
PYTHON=${PYTHON:-python3}

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" tensorflow-cpu "opencv-contrib-python<5" "setuptools<81" matplotlib pandas requests "tqdm>=4.62.1" \
    "moviepy>=1.0.3,<2" "ffmpeg-python>=0.2.0" Pillow
"${PIP[@]}" --no-deps fer facenet-pytorch
# torchvision: the wheels pip can reach are CUDA builds whose ops do not load against the CPU
# torch, and facenet's MTCNN needs only torchvision.ops.batched_nms (plus transforms.functional.
# to_tensor in extract_face, which fer never calls): a stand-in package gives exactly those.
"$VENV/bin/python" -m pip uninstall -q -y torchvision 2>/dev/null || true
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$SITE/torchvision" && cp -r "$(dirname "$0")/torchvision_stand_in/torchvision" "$SITE/"

# A working install loads both detectors and the emotion model (no network: the models ship in the wheels).
"$VENV/bin/python" - <<'PY'
import cv2, numpy as np, torch
assert cv2.__version__.split(".")[0] == "4" and cv2.data.haarcascades, cv2.__version__
assert torch.__version__.startswith("2.13.0"), torch.__version__
from fer.fer import FER  # fer 25.x: the package root no longer re-exports it
blank = np.full((240, 320, 3), 128, np.uint8)
for mtcnn in (False, True):
    FER(mtcnn=mtcnn).detect_emotions(blank)  # loads every model; a grey frame has no face
print("fer venv ready:", __import__("fer").__file__)
PY
echo "$VENV"
