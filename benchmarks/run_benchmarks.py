"""The bench matrix on the shared sample videos, written as a dated report for review.

    python benchmarks/run_benchmarks.py [--model PATH] [--face-model PATH] [--repeat 2] [--max-load 1.5]
        [--sections samples every-face] [--fer-venv DIR]

Writes benchmarks/reports/YYYY-MM-DD.json (every number of every run) and .md (the tables a
reviewer reads), so a change that costs speed shows up as a diff. The main sample gets the full
`emoview bench --all` matrix (single vs threaded, recording off/on, 1 and 4 faces, paced at its
own 23.976 fps and at 30 fps); the other samples get the threaded and single runs without
recording. Other work on the machine slows everything down, so the script waits (up to
--wait minutes) for the 1-minute load average to drop below --max-load, and records the load of
every run next to its numbers.

The "every face" section (benchmarks/peers/every_face.py) runs emoview, the bare landmarker and fer
(Haar and MTCNN, from fer's own venv: benchmarks/peers/build_fer_venv.sh) on made videos of 1, 4
and 8 faces at three sizes; without fer's venv it is skipped and says how to build it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoview.realtime.commands.bench import benchmark, machine_info, figure_text, machine_was_shared, others_cores_text  # noqa: E402
from emoview.realtime.commands.cli import build_parser  # noqa: E402
from emoview.realtime.errors import EmoviewError  # noqa: E402
from emoview.realtime.face_model import resolve_face_model  # noqa: E402
from peers import every_face  # noqa: E402  (benchmarks/peers/every_face.py)

SHARED = Path(os.environ.get("EMOVIEW_SHARED", REPO.parent / "shared"))
MAIN_SAMPLE = "WolfgangLanger_Pexels.mp4"
OTHER_SAMPLES = ("single_face.mp4", "face_noface.mov", "noface_face.mov")
TARGETS = {"threaded, no record": 0.85, "threaded, record": 0.75}
LATENCY_TARGET_MS = 33.0


def bench_args(video: Path, args: argparse.Namespace, **overrides) -> argparse.Namespace:
    """`emoview bench --video VIDEO` as its own parser reads it (every option gets its default,
    new ones too), with the report's settings and `overrides` on top."""
    argv = ["--video", str(video), "--repeat", str(args.repeat), "--max-faces", "1", "--face-model", args.face_model]
    values = vars(build_parser("bench").parse_args(argv + (["--model", args.model] if args.model else [])))
    values.update(overrides)
    return argparse.Namespace(**values)


def wait_for_quiet(max_load: float, minutes: float) -> float:
    deadline = time.monotonic() + minutes * 60
    load = os.getloadavg()[0]
    while load > max_load and time.monotonic() < deadline:
        print(f"load {load:.2f} > {max_load}: waiting for a quieter machine...", file=sys.stderr)
        time.sleep(20)
        load = os.getloadavg()[0]
    if load > max_load:
        print(f"warning: measuring at load {load:.2f}; the numbers will be pessimistic", file=sys.stderr)
    return load


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_all(args: argparse.Namespace) -> dict:
    samples = SHARED / "data" / "samples"
    report = {"date": dt.date.today().isoformat(), "commit": git_commit(), "videos": {}}
    report["load_1m_at_start"] = wait_for_quiet(args.max_load, args.wait)
    if "samples" in args.sections:
        run_samples(args, samples, report)
    if "every-face" in args.sections:
        report["every_face"] = every_face.run_every_face(args)
    report["load_1m_at_end"] = os.getloadavg()[0]
    report["machine"] = report["videos"][MAIN_SAMPLE]["machine"] if report["videos"] else machine_info()
    return report


def run_samples(args: argparse.Namespace, samples: Path, report: dict) -> None:
    print(f"{MAIN_SAMPLE}: full matrix", file=sys.stderr)
    report["videos"][MAIN_SAMPLE] = benchmark(bench_args(samples / MAIN_SAMPLE, args, all=True), args.face_model)
    for name in OTHER_SAMPLES:
        runs = []
        for mode in ("threaded", "single"):
            print(f"{name}: {mode}", file=sys.stderr)
            runs.append(benchmark(bench_args(samples / name, args, mode=mode), args.face_model))
        first = dict(runs[0])
        first["runs"] = [{k: v for k, v in run.items() if k not in ("runs", "input", "machine")} for run in runs[1:]]
        report["videos"][name] = first


# -- markdown ----------------------------------------------------------------------------------------


def others(run: dict) -> str:
    return f"**{others_cores_text(run)}**" if machine_was_shared(run) else others_cores_text(run)


def run_rows(video: dict) -> list[str]:
    rows = []
    for run in [video, *video["runs"]]:
        latency = run["latency"]
        rows.append(
            f"| {run['name']} | {run['frames']} | {run['end_to_end_fps']:.1f} | {run['landmarker_fps']:.1f} | "
            f"**{run['ratio_to_landmarker']:.2f}** | {figure_text(latency['p50_ms'])} | {figure_text(latency['p95_ms'])} | {figure_text(latency['p99_ms'])} | "
            f"{run['dropped'] if run['paced'] else '-'} | {run['cpu']['cores_used']:.2f} | {others(run)} |"
        )
    return rows


def verdicts(video: dict) -> list[str]:
    lines = []
    runs = [video, *video["runs"]]
    for prefix, target in TARGETS.items():
        match = [r for r in runs if r["name"].startswith(prefix) and r["max_faces"] == 1 and not r["paced"]]
        for run in match:
            ok = run["ratio_to_landmarker"] >= target
            lines.append(f"- {run['name']}: ratio {run['ratio_to_landmarker']:.2f} (target >= {target}) {'met' if ok else '**missed**'}"
                         + (" (machine shared with other processes: pessimistic)" if machine_was_shared(run) else ""))
    for run in runs:
        if run["paced"] and not run["record"]:
            p95 = run["latency"]["p95_ms"]
            ok = p95 is not None and p95 <= LATENCY_TARGET_MS and run["dropped"] == 0
            rate = f"{run['paced_rate_fps']:.0f} fps" if run["paced_rate_fps"] else "the file's own rate"
            lines.append(f"- paced at {rate}: latency p95 {figure_text(p95)} ms (target <= {LATENCY_TARGET_MS:.0f}), dropped {run['dropped']} "
                         f"{'met' if ok else '**missed**'}" + (" (machine shared with other processes: pessimistic)" if machine_was_shared(run) else ""))
    return lines


def markdown(report: dict) -> str:
    machine = report["machine"]
    out = [
        f"# emoview benchmarks, {report['date']} (commit {report['commit']})",
        "",
        f"{machine['cpus']} x {machine['processor']}; Python {machine['python']}, MediaPipe {machine['mediapipe']}, "
        f"ONNX Runtime {machine['onnxruntime']}, PyAV {machine['pyav']}. 1-minute load average: {report['load_1m_at_start']:.2f} "
        f"at the start, {report['load_1m_at_end']:.2f} at the end (other work on the machine slows every number down).",
        "",
        "`ratio` = end-to-end fps / bare-landmarker fps on the same frames with the same landmarker settings. "
        "Latency: hand-over (files) or capture (paced, camera) to annotated frame. Paced runs play the file like a camera "
        "(its own 23.976 fps, or 30 fps), dropping frames the pipeline is too slow for. \"Others' cores\": CPU that other "
        "processes used during the run and during its floor (bold above 0.3: a shared machine, pessimistic numbers).",
        "",
    ]
    for name, video in report["videos"].items():
        stages = video["stages"]
        out += [
            f"## {name} ({video['frames']} frames)",
            "",
            "| run | frames | fps | landmarker fps | ratio | latency p50 ms | p95 | p99 | dropped | CPU cores | others' cores run / floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *run_rows(video),
            "",
            f"Stages of *{video['name']}*, ms (p50 / p95 / p99):",
            "",
            "| stage | p50 | p95 | p99 |",
            "|---|---:|---:|---:|",
            *(f"| {stage} | {figure_text(s['p50_ms'])} | {figure_text(s['p95_ms'])} | {figure_text(s['p99_ms'])} |" for stage, s in stages.items() if s["samples"]),
            f"| *landmarker alone* | {figure_text(video['landmarker']['detect']['p50_ms'])} | {figure_text(video['landmarker']['detect']['p95_ms'])} | "
            f"{figure_text(video['landmarker']['detect']['p99_ms'])} |",
            "",
        ]
        if name == MAIN_SAMPLE:
            out += ["Targets:", "", *verdicts(video), ""]
    if "every_face" in report:
        out += every_face.markdown(report["every_face"])
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="emotion model (.onnx); default: the one shipped with emoview")
    parser.add_argument("--face-model", help="face_landmarker.task; default: the shared one, else as emoview resolves it")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement, fastest kept (default 2)")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait for the load average to drop below this")
    parser.add_argument("--wait", type=float, default=10.0, help="minutes to wait for it at most (default 10)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "reports", help="report folder")
    parser.add_argument("--sections", nargs="+", choices=("samples", "every-face"), default=["samples", "every-face"],
                        help="what to run: the sample videos' matrix, the every-face matrix against fer (default: both)")
    every_face.add_options(parser)
    args = parser.parse_args()
    shared_face_model = SHARED / "models" / "face_landmarker.task"
    try:
        if args.face_model is None and shared_face_model.is_file():
            args.face_model = str(shared_face_model)
        args.face_model = str(resolve_face_model(args.face_model))
        report = run_all(args)
    except EmoviewError as exc:
        print(f"run_benchmarks: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / report["date"]
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
