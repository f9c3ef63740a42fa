"""The "every face" section of the dated benchmark report (issue #14): emoview against fer.

On videos of 1, 4 and 8 real faces at 640x360, 1280x720 and 1920x1080 (made in a temporary folder
by tests/fixtures/crowd.py, every face in view in every frame), in the same run and on the same
video: emoview end to end (`emoview bench`, threaded, no recording), the bare MediaPipe landmarker
on the same frames (bench's floor), and fer with its Haar and its MTCNN detector (in fer's own
venv, benchmarks/peers/fer_fps.py). Each gives frames/s and the faces it found per frame, and the
report divides emoview's fps by the others' (ratios from the same run, so a busy machine slows
both sides). emoview is called through `emoview bench`'s own parser, so options other work adds
(say `--min-face`) get their defaults, and `--emoview-args` can pass them.

The section is skipped, with the command that builds it, when fer's venv does not exist.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

import crowd  # noqa: E402  (tests/fixtures/crowd.py: the made videos and their truth)

DEFAULT_FER_VENV = Path(os.environ.get("EMOVIEW_FER_VENV", Path.home() / ".cache" / "emoview" / "peers" / "fer-venv"))
FER_SCRIPT = Path(__file__).with_name("fer_fps.py")
BUILD_SCRIPT = Path(__file__).with_name("build_fer_venv.sh")
MAX_FACES = 8  # emoview's --max-faces on every video: at least the most faces any has
FPS = 25.0  # of the made videos


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("every face (emoview vs fer on made crowds)")
    group.add_argument("--fer-venv", type=Path, default=DEFAULT_FER_VENV, help=f"fer's venv (default {DEFAULT_FER_VENV}; $EMOVIEW_FER_VENV)")
    group.add_argument("--crowd-frames", type=int, default=150, help="frames per made video, emoview and landmarker (default 150)")
    group.add_argument("--fer-frames", type=int, default=60, help="frames fer runs on at most, the first of each video (default 60)")
    group.add_argument("--fer-seconds", type=float, default=15.0,
                       help="time per fer detector and video at most (default 15; at least 5 frames): MTCNN takes seconds a frame")
    group.add_argument("--emoview-args", default="", help='more `emoview bench` options for the emoview runs, e.g. "--min-face 40"')


def fer_python(venv: Path) -> Path | None:
    python = Path(venv) / "bin" / "python"
    return python if python.is_file() else None


def build_hint(venv: Path) -> str:
    return f"fer runs in a venv of its own, not found at {venv}: build it with `{BUILD_SCRIPT.relative_to(REPO)} {venv}` (downloads TensorFlow)"


def emoview_run(video: Path, args: argparse.Namespace) -> dict:
    """`emoview bench --video VIDEO --max-faces 8` with the report's settings, through bench's own parser."""
    from emoview.realtime.commands.bench import benchmark
    from emoview.realtime.commands.cli import build_parser

    argv = ["--video", str(video), "--max-faces", str(MAX_FACES), "--frames", str(args.crowd_frames), "--repeat", str(args.repeat)]
    argv += ["--face-model", args.face_model] + (["--model", args.model] if args.model else []) + shlex.split(args.emoview_args)
    bench_args = build_parser("bench").parse_args(argv)
    run = benchmark(bench_args, bench_args.face_model)
    keep = ("frames", "end_to_end_fps", "faces_per_frame", "frames_with_faces", "cpu", "other_processes_cores", "load_1m")
    out = {k: run[k] for k in keep}
    out["landmarker"] = {k: run["landmarker"][k] for k in ("frames", "fps", "faces_per_frame", "frames_with_faces", "cores_used")}
    out["machine"] = run["machine"]
    out["argv"] = argv
    return out


def fer_runs(python: Path, video: Path, frames: int, seconds: float, detectors=("haar", "mtcnn"), truth: Path | None = None) -> dict[str, dict]:
    """fer with each detector on the same frames, in one process of fer's venv: {detector: result}
    (an {"error": ...} for a detector that gave no result); with `truth`, detections on real faces too."""
    command = [str(python), str(FER_SCRIPT), str(video), "--frames", str(frames), "--max-seconds", str(seconds)]
    command += ["--truth", str(truth)] if truth else []
    for detector in detectors:
        command += ["--detector", detector]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        results = {r["detector"]: r for r in (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))}
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        error = f"exit {done.returncode}: {tail}"
    except subprocess.TimeoutExpired:
        results, error = {}, "timed out after 30 min"
    return {d: results.get(d, {"error": error}) for d in detectors}


def run_every_face(args: argparse.Namespace) -> dict:
    """Every video of the matrix through emoview, fer (Haar) and fer (MTCNN), one after another."""
    python = fer_python(args.fer_venv)
    if python is None:
        hint = build_hint(args.fer_venv)
        print(f"every face: skipped. {hint}", file=sys.stderr)
        return {"skipped": hint}
    section = {"crowd_frames": args.crowd_frames, "fer_frames": args.fer_frames, "fer_seconds": args.fer_seconds,
               "max_faces": MAX_FACES, "fer_venv": str(args.fer_venv), "rows": []}
    with tempfile.TemporaryDirectory(prefix="emoview-every-face-") as folder:
        print("every face: making the videos (tests/fixtures/crowd.py)...", file=sys.stderr)
        videos = crowd.make_bench_set(folder, seconds=args.crowd_frames / FPS, fps=FPS)
        for video in videos:
            truth = json.loads(crowd.truth_path(video).read_text())
            row = {"video": video.name, "width": truth["width"], "height": truth["height"], "faces": len(truth["faces"]),
                   "face_heights": [f["face_height"] for f in truth["faces"]]}
            print(f"every face: {video.name}: emoview, fer (Haar), fer (MTCNN)", file=sys.stderr)
            row["emoview"] = emoview_run(video, args)
            fer = fer_runs(python, video, args.fer_frames, args.fer_seconds, truth=crowd.truth_path(video))
            row["fer_haar"], row["fer_mtcnn"] = fer["haar"], fer["mtcnn"]
            section["rows"].append(row)
    section["machine"] = section["rows"][0]["emoview"]["machine"]
    section["fer_versions"] = next((r[k]["versions"] for r in section["rows"] for k in ("fer_haar", "fer_mtcnn") if "versions" in r[k]), None)
    return section


# -- markdown ---------------------------------------------------------------------------------------


def _fps(run: dict) -> str:
    return f"{run['fps']:.1f}" if run.get("fps") else "-"


def _found(run: dict) -> str:
    value = run.get("faces_per_frame_mean", run.get("faces_per_frame"))
    real = run.get("on_faces_per_frame_mean")
    return "-" if value is None else f"{value:.2f}" + ("" if real is None else f" ({real:.2f})")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _times(value: float | None) -> str:
    return "-" if value is None else f"**{value:.2f}**"


def ratios(row: dict) -> dict:
    fps = row["emoview"]["end_to_end_fps"]
    return {"landmarker": _ratio(fps, row["emoview"]["landmarker"]["fps"]), "fer_haar": _ratio(fps, row["fer_haar"].get("fps")),
            "fer_mtcnn": _ratio(fps, row["fer_mtcnn"].get("fps"))}


def markdown(section: dict) -> list[str]:
    title = "## Every face: emoview vs fer on made crowds (issue #14)"
    if "skipped" in section:
        return [title, "", f"Skipped: {section['skipped']}.", ""]
    versions = section.get("fer_versions") or {}
    out = [
        title,
        "",
        f"Videos made by `tests/fixtures/crowd.py` from the sample faces: N faces (heights 250 down to 60 px at 1080 lines, "
        f"in proportion at lower resolutions: 83 down to 20 px at 360), all in view in every frame, moving and talking. "
        f"emoview: `emoview bench`, threaded, no recording, `--max-faces {section['max_faces']}`, end to end (decode to annotated frame), "
        f"{section['crowd_frames']} frames; *landmarker*: the bare MediaPipe landmarker on the same frames. fer "
        f"{versions.get('fer', '?')} (TensorFlow {versions.get('tensorflow', '?')}, OpenCV {versions.get('opencv', '?')}): "
        f"`FER(mtcnn=...).detect_emotions(frame)` with its defaults on frames decoded beforehand: the first {section['fer_frames']} frames, "
        f"or as many as {section['fer_seconds']:.0f} s allow (at least 5; the fps column's frame counts are in the JSON). "
        "*found* = faces found per frame, on average (the truth is N); for fer, in brackets, those on a real face (a "
        "detection's centre in a face's box, one per face: the rest are false detections). "
        "Ratios = emoview's fps / the other's, measured in this run. CPU = CPU time per frame (all threads), ms.",
        "",
        "| video | N | emoview fps | found | CPU | landmarker fps | found | fer Haar fps | found | CPU | fer MTCNN fps | found | CPU "
        "| emoview / landmarker | emoview / fer Haar | emoview / fer MTCNN |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in section["rows"]:
        e, haar, mtcnn, r = row["emoview"], row["fer_haar"], row["fer_mtcnn"], ratios(row)
        e_cpu = 1000 * e["cpu"]["process_cpu_s"] / e["frames"] if e["frames"] else None
        out.append(
            f"| {row['width']}x{row['height']} | {row['faces']} | {e['end_to_end_fps']:.1f} | {_found(e)} | {_ms(e_cpu)} "
            f"| {e['landmarker']['fps']:.1f} | {_found(e['landmarker'])} "
            f"| {_fps(haar)} | {_found(haar)} | {_ms(_cpu(haar))} | {_fps(mtcnn)} | {_found(mtcnn)} | {_ms(_cpu(mtcnn))} "
            f"| {_times(r['landmarker'])} | {_times(r['fer_haar'])} | {_times(r['fer_mtcnn'])} |"
        )
    errors = [f"- {row['video']}, fer {k[4:]}: {row[k]['error']}" for row in section["rows"] for k in ("fer_haar", "fer_mtcnn") if "error" in row[k]]
    if errors:
        out += ["", "fer failed on:", "", *errors]
    shared = [row["video"] for row in section["rows"] if max(v for v in row["emoview"]["other_processes_cores"].values() if v is not None) > 0.3]
    if shared:
        out += ["", f"Other processes used more than 0.3 cores during emoview's runs on {len(shared)} of {len(section['rows'])} videos: "
                "all numbers are pessimistic (fer's runs shared the machine alike)."]
    return [*out, ""]


def _cpu(run: dict) -> float | None:
    value = run.get("cpu_seconds_per_frame")
    return None if value is None else 1000 * value


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
