"""Batch scaling: `emoview analyze` on ~50 short clips with 1 worker, 2 workers and Ray with 2 actors.

    flock /work/bench.lock python benchmarks/bench_scale.py [--clips 50] [--repeat 1] [--model PATH] [--face-model PATH]

Builds the batch from the shared sample videos (the long one cut into four clips, then the set
repeated under numbered folders up to --clips), runs the real command line for each configuration
(process start, worker spawn or Ray start-up and model loading all included in the wall time), and
writes benchmarks/reports/YYYY-MM-DD-scale.json (every number) and .md (the table). Each run is
compared with the 1-worker run of the same round: speed-up = videos/min over the 1-worker
videos/min; scaling efficiency = speed-up / workers. Start-up is the backend's own (workers
spawned, or ray.init, until every worker has its models loaded), from each batch's index.json;
peak memory per worker is each worker's peak resident set (getrusage), the largest of the batch.
The load average and whether the training run was on are recorded beside each round: this machine
has 2 cores, and other work on them makes every ratio pessimistic.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOVIEW_SHARED", REPO.parent / "shared"))
SAMPLES = ("single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4")
LONG_SAMPLE = "WolfgangLanger_Pexels.mp4"
CUTS = 4
TRAINING_FLAG = Path("/work/runs/TRAINING")
CONFIGS = (("1 worker", ["--workers", "1"]), ("2 workers", ["--workers", "2"]), ("Ray, 2 actors", ["--ray", "--workers", "2"]))


def cut(video: Path, parts: int, folder: Path) -> list[Path]:
    """`video` as `parts` consecutive clips (H.264, the same frames and frame rate)."""
    import av

    with av.open(str(video)) as source:
        stream = source.streams.video[0]
        rate = stream.average_rate
        frames = [frame.to_ndarray(format="rgb24") for frame in source.decode(video=0)]
    size = -(-len(frames) // parts)
    paths = []
    for i in range(parts):
        path = folder / f"{video.stem}_part{i + 1}.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = "yuv420p"
            for image in frames[i * size : (i + 1) * size]:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        paths.append(path)
    return paths


def make_batch(folder: Path, clips: int) -> Path:
    """--clips videos in numbered folders (links to a few real clips: each is decoded and analysed in full)."""
    originals = folder / "originals"
    originals.mkdir(parents=True)
    base = cut(SHARED / "data" / "samples" / LONG_SAMPLE, CUTS, originals) + [SHARED / "data" / "samples" / name for name in SAMPLES]
    batch = folder / "batch"
    for i in range(clips):
        source = base[i % len(base)]
        link = batch / f"set{i // len(base):02d}" / source.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)
    return batch


def run_config(batch: Path, out: Path, options: list[str], args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "emoview", "analyze", str(batch), "--out", str(out), *options]
    if args.model:
        command += ["--model", args.model]
    if args.face_model:
        command += ["--face-model", args.face_model]
    load = os.getloadavg()[0]
    begin = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    index = json.loads((out / "index.json").read_text())
    rows = index["rows"]
    return {
        "options": options,
        "wall_s": round(wall, 2),
        "videos": len(rows),
        "ok": index["ok"],
        "frames": index["frames"],
        "videos_per_min": round(len(rows) / wall * 60, 2),
        "frames_per_s": round(index["frames"] / wall, 2),
        "startup_s": index["startup_s"],
        "peak_rss_mb_per_worker": max(float(row["peak_rss_mb"]) for row in rows),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "training_on": TRAINING_FLAG.exists(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three configurations")
    parser.add_argument("--model")
    parser.add_argument("--face-model")
    parser.add_argument("--keep", action="store_true", help="keep the batch folder and outputs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="emoview-scale-"))
    try:
        batch = make_batch(work, args.clips)
        rounds = []
        for round_ in range(args.repeat):
            results = {}
            for name, options in CONFIGS:
                out = work / f"out-{round_}-{name.replace(' ', '_').replace(',', '')}"
                results[name] = run_config(batch, out, options, args)
                base = results["1 worker"]["videos_per_min"]
                workers = 1 if name == "1 worker" else 2
                results[name]["speedup"] = round(results[name]["videos_per_min"] / base, 3)
                results[name]["efficiency"] = round(results[name]["speedup"] / workers, 3)
                print(f"round {round_ + 1} {name}: {json.dumps(results[name])}", file=sys.stderr)
            rounds.append(results)
        write_report(rounds, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def write_report(rounds: list[dict], args: argparse.Namespace) -> None:
    day = dt.date.today().isoformat()
    folder = REPO / "benchmarks" / "reports"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    shared = any(r["training_on"] for results in rounds for r in results.values())
    meta = {"date": day, "commit": commit, "clips": args.clips, "cores": len(os.sched_getaffinity(0)),
            "model": args.model or "shipped", "cores_shared_with_training": shared}
    (folder / f"{day}-scale.json").write_text(json.dumps({**meta, "rounds": rounds}, indent=1) + "\n")
    lines = [
        f"# emoview batch scaling, {day} (commit {commit})", "",
        f"`python benchmarks/bench_scale.py --clips {args.clips} --repeat {args.repeat}`: `emoview analyze` on {args.clips} short clips "
        f"(the shared samples, the long one cut in {CUTS}; {rounds[0]['1 worker']['frames']} frames in all), "
        f"{meta['cores']} cores, model: {meta['model']}. Wall time of the whole command: start-up, spawning or Ray, models, "
        "every video and the index. Speed-up: videos/min over the 1-worker run of the same round; efficiency: speed-up / workers.",
        "",
        f"**The cores were shared**: the training flag ({TRAINING_FLAG}) was present during at least one run (column `training`), "
        "and other work may have run too: the load averages beside each run say how busy the 2 cores were; every ratio is pessimistic."
        if shared else "The training flag was absent during these runs; the load averages beside each run say what else ran.",
        "",
        "| round | run | wall s | videos/min | frames/s | speed-up | efficiency | start-up s | peak MB per worker | load before / after | training |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, results in enumerate(rounds, 1):
        for name, r in results.items():
            lines.append(
                f"| {i} | {name} | {r['wall_s']} | {r['videos_per_min']} | {r['frames_per_s']} | **{r['speedup']:.2f}** | {r['efficiency']:.2f} | "
                f"{r['startup_s']} | {r['peak_rss_mb_per_worker']:.0f} | {r['load_before']} / {r['load_after']} | {'on' if r['training_on'] else 'off'} |"
            )
    (folder / f"{day}-scale.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {folder / f'{day}-scale.md'}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
