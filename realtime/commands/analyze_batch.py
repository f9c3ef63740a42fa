"""`emoview analyze` on many videos: checks, a progress bar, the backend, the index, one summary line.

The work itself is `realtime/batch.py` on a `workers.LocalPool` or a `ray_backend.RayPool`. The
exit status tells whether anything failed: 0 when every video is ok or skipped, 1 when any failed
(see index.csv), 130 after Ctrl-C (the index is still written: unfinished videos say so).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from emoview.realtime.batch import TASK, Batch, fingerprint
from emoview.realtime.batch_inputs import expand_inputs
from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.realtime.face_search import MIN_FACE
from emoview.realtime.files import check_output_folder
from emoview.realtime.signals import hold_signals
from emoview.realtime.workers import make_pool

SINGLE_VIDEO_ONLY = ("record", "mesh")
SHOWN_FAILURES = 10  # failed videos named on the terminal; index.csv has them all


def progress_bar(what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("videos  {task.fields[fps]:6.1f} frames/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    )


def run_batch(args: argparse.Namespace) -> int:
    from emoview.realtime.classifier import EmotionClassifier
    from emoview.realtime.face_model import resolve_face_model

    used = [f"--{name}" for name in SINGLE_VIDEO_ONLY if getattr(args, name)]
    if used:
        raise InputError(f"{' '.join(used)} works for one video, not a batch; analyse that video on its own")
    if not args.out:
        raise InputError("a batch needs --out DIR: one timeline per video and the index go there")
    out = check_output_folder(args.out, "--out")
    items = expand_inputs(args.inputs)
    if not items:
        raise InputError(f"no video files in {' '.join(args.inputs)} (looked for {', '.join(('.mp4', '.mov', '.avi', '.mkv', '...'))}); check the inputs")
    classifier = EmotionClassifier(args.model, threads=args.threads)  # a bad model fails here, before any worker starts
    face_model = resolve_face_model(args.face_model)
    options = {"max_faces": args.max_faces or 1, "min_confidence": args.min_confidence, "window": args.window,
               "min_face": args.min_face or MIN_FACE}
    made_by = fingerprint(classifier.path, classifier.spec.to_json(), face_model, options)
    setup = {
        "files": {"model": str(classifier.path), "face_model": str(face_model)},
        "model_shown": str(classifier.path),
        "options": options,
        "threads": args.threads,
        "fingerprint": made_by,
        "csv": args.csv,
    }
    batch = Batch(items, Path(out), args.csv, made_by, force=args.force)
    pool = make_pool(TASK, setup, workers=args.workers, threads=args.threads, ray=args.ray)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    interrupted = False
    try:
        with progress_bar("analysing") as bar:
            task = bar.add_task("batch", total=len(batch.todo), fps=0.0)

            def on_row(row: dict) -> None:
                bar.update(task, advance=1, fps=batch.frames_done / max(time.perf_counter() - started, 1e-6))

            batch.run(pool, on_row)
    except KeyboardInterrupt:
        interrupted = True
    hold_signals()  # the index is written whole; a second Ctrl-C must not cost it
    elapsed = time.perf_counter() - started
    written = batch.write_index(elapsed, pool.name, pool.startup_s)
    _report(batch, elapsed, written, pool, interrupted)
    if interrupted:
        return 130
    return 1 if batch.counts()["failed"] else 0


def _report(batch: Batch, elapsed: float, written: list[Path], pool, interrupted: bool) -> None:
    counts = batch.counts()
    line = f"{len(batch.rows)} videos: {counts['ok']} ok, {counts['skipped']} skipped (done before), {counts['failed']} failed"
    if counts["ok"]:
        line += f"; {batch.frames_done / max(elapsed, 1e-6):.1f} frames/s on {pool.name} workers in {elapsed:.1f} s"
    if interrupted:
        line += " (interrupted: run the same command again to finish)"
    stderr.print(line, markup=False)
    failed = [] if interrupted else [row for row in batch.rows if row["status"] == "failed"]
    for row in failed[:SHOWN_FAILURES]:
        stderr.print(f"failed: {row['path']}: {row['error']}", markup=False)
    if len(failed) > SHOWN_FAILURES:
        stderr.print(f"... and {len(failed) - SHOWN_FAILURES} more failed (see index.csv)", markup=False)
    stderr.print(f"wrote {written[0]} and {written[1].name}", markup=False)
