"""fer's speed and reach on a video, as one JSON line: the peer in emoview's "every face" benchmark.

    FER_VENV/bin/python benchmarks/peers/fer_fps.py VIDEO --detector haar|mtcnn [--frames N] [--max-seconds S]

One JSON line per `--detector` (give it twice to run both on the same frames in one process:
TensorFlow takes seconds to import, so the benchmark starts fer once per video).

Runs in the venv benchmarks/peers/build_fer_venv.sh builds (fer needs TensorFlow and its own
OpenCV, which emoview's venv must not get), so it imports nothing from emoview. It does what a fer
user does per frame: `FER(mtcnn=...).detect_emotions(frame)` with fer's defaults (a face detector,
then its emotion CNN on each face). The frames are decoded before the clock starts and one warm-up
call loads the models, so only fer's own work is timed: if anything this flatters fer next to
emoview's end-to-end figure, which includes decoding and drawing.

`--truth JSON` (tests/fixtures/crowd.py's ground truth of a made video) also counts the faces
found on a real face: a detection whose centre lies in a face's box, one per face; the rest are
false detections.

`--max-seconds` stops a detector after that long (at least 5 frames): MTCNN on 1080p frames takes
seconds each, and fps is a rate, so fewer frames still measure it.

Prints {"detector", "frames", "fps", "faces_per_frame_mean", "cpu_seconds_per_frame", "wall_s", ...}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time


def read_frames(path: str, limit: int | None) -> list:
    import cv2

    capture = cv2.VideoCapture(path)
    frames = []
    ok, frame = capture.read()
    while ok and (not limit or len(frames) < limit):
        frames.append(frame)
        ok, frame = capture.read()
    capture.release()
    return frames


MIN_FRAMES = 5


def on_faces(detections: list, truth_faces: dict) -> int:
    """Detections (fer's [x, y, w, h] boxes) whose centre lies in a truth face's box, one per face."""
    boxes = [t["box"] for t in truth_faces.values() if t["box"]]
    matched = 0
    for detection in detections:
        x, y, w, h = detection["box"]
        cx, cy = x + w / 2, y + h / 2
        hit = next((b for b in boxes if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]), None)
        if hit is not None:
            boxes.remove(hit)
            matched += 1
    return matched


def measure(frames: list, detector: str, max_seconds: float | None = None, truth: dict | None = None) -> dict:
    from fer.fer import FER  # fer 25.x: the package root no longer re-exports it

    fer = FER(mtcnn=detector == "mtcnn")
    fer.detect_emotions(frames[0])  # model loading and first-call set-up, not timed
    found, real = [], []
    wall, cpu = time.perf_counter(), time.process_time()
    for k, frame in enumerate(frames):
        detections = fer.detect_emotions(frame)
        found.append(len(detections))
        if truth is not None:
            real.append(on_faces(detections, truth["frames"][k]["faces"]))
        if max_seconds and len(found) >= MIN_FRAMES and time.perf_counter() - wall >= max_seconds:
            break
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    matched = {"on_faces_per_frame_mean": round(sum(real) / len(real), 3)} if real else {}
    return {
        "detector": detector,
        "frames": len(found),
        "fps": round(len(found) / wall, 3) if wall > 0 else None,
        "faces_per_frame_mean": round(sum(found) / len(found), 3),
        "frames_with_faces": sum(1 for n in found if n),
        "cpu_seconds_per_frame": round(cpu / len(found), 4),
        "cores_used": round(cpu / wall, 2) if wall > 0 else None,
        "wall_s": round(wall, 3),
        **matched,
    }


def versions() -> dict:
    import cv2
    import fer
    import tensorflow as tf

    out = {"fer": getattr(fer, "__version__", None), "tensorflow": tf.__version__, "opencv": cv2.__version__}
    try:
        import facenet_pytorch  # noqa: F401
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--detector", choices=("haar", "mtcnn"), action="append",
                        help="fer's face detector (default: haar, fer's own); twice for both, one line each")
    parser.add_argument("--frames", type=int, help="use the first N frames (default: all)")
    parser.add_argument("--truth", help="ground truth JSON of a made video: also count detections on real faces")
    parser.add_argument("--max-seconds", type=float, help=f"stop a detector after this long (at least {MIN_FRAMES} frames)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("fer").setLevel(logging.WARNING)
    frames = read_frames(args.video, args.frames)
    if not frames:
        print(f"fer_fps: no frames in {args.video}", file=sys.stderr)
        return 2
    truth = json.loads(open(args.truth).read()) if args.truth else None
    for detector in args.detector or ["haar"]:
        result = {"video": args.video, **measure(frames, detector, args.max_seconds, truth), "versions": versions()}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
