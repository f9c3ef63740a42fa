"""`emoview bench`: frames/s and latency per stage, against the bare landmarker on the same frames.

One run by default (the threaded pipeline, as `emoview live` runs it); `--all` runs the matrix:
single-threaded vs threaded, recording off and on, one and four faces, and the live case (the file
played at its frame rate, or `--rate`, like a camera) for capture-to-annotated latency and drops.
The landmarker floor is measured right before each run, on the same frames with the same settings,
and `ratio_to_landmarker = end_to_end_fps / landmarker_fps` says how close the whole pipeline gets
to the part of it nobody can speed up. Other programs loading the CPU skew every number, so the
1-minute load average is recorded with each run. A camera cannot replay frames: its floor uses
frames captured just before the runs, the same number, not the very same frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from rich.console import Console

from emoview.realtime.commands.bench_runs import STAGE_ORDER, Floor, Measured, RunConfig, decode_frames, load_1m, measure_floor, run_pipeline
from emoview.realtime.commands.cli import positive_int
from emoview.realtime.console import figures_table, stderr, stdout_console
from emoview.realtime.errors import InputError
from emoview.realtime.face_model import resolve_face_model
from emoview.realtime.files import check_output_file, write_text
from emoview.realtime.commands.live import add_analysis_options
from emoview.realtime.sources import CameraSource, Source, VideoSource

DEFAULT_CAMERA_FRAMES = 300


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("input (default: camera 0)").add_mutually_exclusive_group()
    source.add_argument("--video", metavar="FILE", help="a video file: every run uses the same frames")
    source.add_argument("--camera", type=int, metavar="N", help="camera index")
    runs = parser.add_argument_group("what to run")
    runs.add_argument("--mode", choices=("threaded", "single"), default="threaded",
                      help="threaded pipeline (default) or everything in one thread")
    runs.add_argument("--record", action="store_true", help="also encode the annotated frames to H.264 (a temporary file)")
    runs.add_argument("--paced", action="store_true", help="play --video at its frame rate (or --rate) like a camera: live latency and drops")
    runs.add_argument("--rate", type=float, metavar="FPS", help="playback rate for paced runs (default: the file's own; 30 = a 30 fps camera)")
    runs.add_argument("--all", action="store_true", help="run the whole matrix: modes x record x 1/4 faces, plus paced runs")
    runs.add_argument("--frames", type=positive_int, metavar="N", help=f"use the first N frames (camera default: {DEFAULT_CAMERA_FRAMES})")
    runs.add_argument("--repeat", type=positive_int, default=1, metavar="N", help="floor and run N times in turn, keep the fastest of each (less noise)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    add_analysis_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_output_file(args.json, "--json", example="bench.json")
    if not args.video and args.paced:
        raise InputError("--paced plays a --video like a camera, and a camera is live already; drop --paced")
    if args.rate is not None and not args.video:
        raise InputError("--rate is the playback rate of a --video, and a camera sets its own; drop --rate")
    if args.paced and args.mode == "single":
        raise InputError("--paced measures the live (threaded) pipeline; drop --mode single")
    if args.rate is not None and args.rate <= 0:
        raise InputError(f"--rate must be positive, not {args.rate}")
    face_model = resolve_face_model(args.face_model)
    args.face_model = str(face_model)
    report = benchmark(args, face_model)
    print_tables(report)
    if args.json:
        write_text(args.json, json.dumps(report, indent=1) + "\n")
        stderr.print(f"wrote {args.json}")
    return 0


def measure_video(video, max_faces: int = 1, min_face: int | None = None, frames: int | None = None, repeat: int = 1,
                  mode: str = "threaded", model=None, face_model=None) -> dict:
    """`emoview bench --video VIDEO --max-faces N --min-face PX` from Python, for reports: the same
    dict `--json` writes (end_to_end_fps and faces_per_frame beside the landmarker alone's
    landmarker.fps and landmarker.faces_per_frame on the same frames, other processes' CPU)."""
    parser = argparse.ArgumentParser()
    configure(parser)
    argv = ["--video", str(video), "--max-faces", str(max_faces), "--repeat", str(repeat), "--mode", mode]
    for option, value in (("--min-face", min_face), ("--frames", frames), ("--model", model), ("--face-model", face_model)):
        if value is not None:
            argv += [option, str(value)]
    args = parser.parse_args(argv)
    face_model = resolve_face_model(args.face_model)
    args.face_model = str(face_model)
    return benchmark(args, face_model)


def default_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(args.mode, args.record, args.max_faces or 1, args.paced, args.rate if args.paced else None)


def matrix(args: argparse.Namespace, live_rates: tuple[float | None, ...]) -> list[RunConfig]:
    """The default run first, then every other combination, then the live (paced) runs."""
    configs = [default_config(args)]
    for mode in ("threaded", "single"):
        for record in (False, True):
            for faces in (1, 4):
                configs.append(RunConfig(mode, record, faces))
    for rate in live_rates:
        configs.append(RunConfig("threaded", False, 1, True, rate))
    if live_rates:
        configs.append(RunConfig("threaded", True, 1, True, live_rates[-1]))
    unique = []
    for config in configs:
        if config not in unique:
            unique.append(config)
    return unique


def source_opener(args: argparse.Namespace):
    def open_source(config: RunConfig) -> Source:
        if args.video:
            return VideoSource(args.video, paced=config.paced, rate=config.rate)
        return CameraSource(args.camera or 0)

    return open_source


def benchmark(args: argparse.Namespace, face_model) -> dict:
    open_source = source_opener(args)
    limit = args.frames or (None if args.video else DEFAULT_CAMERA_FRAMES)
    if not args.video and args.mode == "single":
        stderr.print("[yellow]a camera is live already: --mode single reads it in one thread[/]")
    live_rates = (None, args.rate or 30.0) if args.video else ()  # a camera is paced by itself
    configs = matrix(args, live_rates) if args.all else [default_config(args)]
    with stderr.status("decoding the frames for the landmarker floor...") as status:
        frames = decode_frames(open_source(RunConfig()), limit)
        if not frames:
            raise InputError("the input gave no frames; check the video or camera")
        results = []
        for i, config in enumerate(configs, 1):
            status.update(f"run {i}/{len(configs)}: {config.name} (and its landmarker floor)...")
            floor, measured = measure_pair(config, args, frames, face_model, open_source, limit)
            if measured.stopped_by == "interrupt":
                raise KeyboardInterrupt
            results.append(run_dict(measured, floor))
        del frames
    report = dict(results[0])
    report["runs"] = results[1:]
    report["input"] = {"video": args.video, "camera": None if args.video else (args.camera or 0), "frames_limit": limit,
                       "min_face": getattr(args, "min_face", None)}
    report["machine"] = machine_info()
    return report


def measure_pair(config: RunConfig, args: argparse.Namespace, frames, face_model, open_source, limit) -> tuple[Floor, Measured]:
    """The floor right before its run, `--repeat` times in turn, fastest of each kept.

    Back to back, so both see the same load on the machine (a floor measured minutes earlier
    would skew the ratio either way); the fastest, because other work only ever slows a run.
    """
    floors, runs = [], []
    for _ in range(args.repeat):
        floors.append(measure_floor(frames, face_model, config.max_faces, args.min_confidence))
        runs.append(run_pipeline(config, args, open_source, limit))
        if runs[-1].stopped_by == "interrupt":
            break
    if config.paced:  # fps is the playback rate: the best run is the one that kept up best
        best_run = min(runs, key=lambda m: (m.dropped, m.latency.percentile(95)))
    else:
        best_run = max(runs, key=lambda m: m.fps)
    return max(floors, key=lambda f: f.fps), best_run


def stage_summary(samples) -> dict:
    if samples is None or len(samples) == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None, "samples": 0}
    return {**{k: round(v, 3) for k, v in samples.summary().items()}, "samples": len(samples)}


def run_dict(measured: Measured, floor: Floor) -> dict:
    config = measured.config
    cores = os.cpu_count() or 1
    return {
        "name": config.name,
        "mode": config.mode,
        "record": config.record,
        "max_faces": config.max_faces,
        "paced": config.paced,
        "paced_rate_fps": config.rate,
        "frames": measured.frames,
        "frames_with_faces": measured.frames_with_faces,
        "faces_per_frame": round(measured.faces_found / measured.frames, 2) if measured.frames else None,
        "end_to_end_fps": round(measured.fps, 2),
        "landmarker_fps": round(floor.fps, 2),
        "ratio_to_landmarker": round(measured.fps / floor.fps, 3) if floor.fps else None,
        "latency": stage_summary(measured.latency),
        "dropped": measured.dropped,
        "cpu": {
            "process_cpu_s": round(measured.cpu_s, 3),
            "wall_s": round(measured.wall_s, 3),
            "cores_used": round(measured.cpu_s / measured.wall_s, 2) if measured.wall_s else None,
            "share_of_machine": round(measured.cpu_s / measured.wall_s / cores, 3) if measured.wall_s else None,
        },
        "stages": {stage: stage_summary(measured.stages.get(stage)) for stage in STAGE_ORDER},
        "landmarker": {
            "frames": floor.frames,
            "fps": round(floor.fps, 2),
            "frames_with_faces": floor.frames_with_faces,
            "faces_per_frame": round(floor.faces_found / floor.frames, 2) if floor.frames else None,
            "detect": stage_summary(floor.detect),
            "cores_used": round(floor.cpu_s / floor.wall_s, 2) if floor.wall_s else None,
            "readout": floor.readout,
        },
        "codec": measured.codec,
        "stopped_by": "limit" if measured.stopped_by == "user" else measured.stopped_by,
        "load_1m": {"before": round(measured.load_before, 2), "after": round(measured.load_after, 2)},
        # cores other processes used during the run and during its floor: above ~0.3 the machine
        # was shared and ratios and latencies are pessimistic (the load average counts this benchmark too)
        "other_processes_cores": {"run": _round(measured.others_cores), "floor": _round(floor.others_cores)},
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def machine_info() -> dict:
    import av
    import mediapipe
    import onnxruntime

    return {
        "cpus": os.cpu_count(),
        "processor": _cpu_name(),
        "python": platform.python_version(),
        "mediapipe": mediapipe.__version__,
        "onnxruntime": onnxruntime.__version__,
        "pyav": av.__version__,
        "load_1m_at_end": round(load_1m(), 2),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# -- tables ----------------------------------------------------------------------------------------


def figure_text(value, whole_from: float = 100) -> str:
    """A figure with a tenth below `whole_from` and none above: 24.4 ms, 105 fps, 9.7/10 faces (a
    tenth of 105 fps tells nothing, and the overview then fits 80 columns whatever the machine)."""
    return "-" if value is None else f"{value:.1f}" if abs(value) < whole_from else f"{value:.0f}"


SHARED_CORES = 0.3  # other processes' CPU, in cores, above which a run's numbers are pessimistic


def machine_was_shared(run: dict) -> bool:
    """Other processes used more than SHARED_CORES during the run or its floor."""
    values = [v for v in run["other_processes_cores"].values() if v is not None]
    return bool(values) and max(values) > SHARED_CORES


def others_cores_text(run: dict) -> str:
    """Other processes' CPU during the run / its floor, in cores."""
    cores = run["other_processes_cores"]
    return "/".join(figure_text(cores[k], whole_from=10) for k in ("run", "floor"))  # tenths: SHARED_CORES is 0.3


def print_tables(report: dict, console: Console | None = None) -> None:
    console = console or stdout_console(piped_width=130)
    runs = [report, *report["runs"]]
    overview = figures_table(f"emoview bench: {report['input']['video'] or 'camera'} ({report['frames']} frames)")
    overview.add_column("run", ratio=1)  # long names wrap; the figures never do
    for column in ("fps", "floor\nfps", "ratio", "faces", "p50\nms", "p95", "p99", "drop", "CPU", "others"):
        overview.add_column(column, justify="right")
    for run in runs:
        latency = run["latency"]
        overview.add_row(
            run["name"],
            figure_text(run["end_to_end_fps"]),
            figure_text(run["landmarker_fps"]),
            f"{run['ratio_to_landmarker']:.2f}" if run["ratio_to_landmarker"] is not None else "-",
            f"{figure_text(run['faces_per_frame'], 10)}/{figure_text(run['landmarker']['faces_per_frame'], 10)}",
            figure_text(latency["p50_ms"]),
            figure_text(latency["p95_ms"]),
            figure_text(latency["p99_ms"]),
            str(run["dropped"]) if run["paced"] or not report["input"]["video"] else "-",
            f"{run['cpu']['cores_used']:.2f}",
            f"[yellow]{others_cores_text(run)}[/]" if machine_was_shared(run) else others_cores_text(run),
        )
    console.print(overview)
    stages = figures_table(f"stages, ms: {report['name']}")
    for column in ("stage", "p50", "p95", "p99", "mean"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for stage, summary in report["stages"].items():
        if summary["samples"]:
            name = "decode/capture" if stage == "decode" else stage
            stages.add_row(name, *(figure_text(summary[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")))
    detect = report["landmarker"]["detect"]
    stages.add_row("[dim]landmarker alone[/]", *(figure_text(detect[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")))
    console.print(stages)
    busy = any(machine_was_shared(run) for run in runs)
    console.print(
        "floor fps = landmarker fps: MediaPipe's landmarker alone on the same frames; ratio = fps / floor fps "
        "(ratio_to_landmarker); faces = faces found per frame by emoview / by the landmarker alone; p50/p95/p99 = capture to annotated frame, ms; drop = frames a live source dropped; "
        f"CPU = cores this run used; others = cores other processes used during the run / its floor "
        f"({report['machine']['cpus']} CPUs)"
        + (" [yellow]- the machine was shared: numbers are pessimistic[/]" if busy else "")
    )
