"""`emoview analyze VIDEO`: a whole video as fast as the machine allows, into a per-second timeline.

Several videos, a folder, a glob or a list file make a batch (`analyze_batch.py`): one timeline
per video under --out, an index, local worker processes or Ray. One video file is analysed here.

Same Session and Analyzer as the live command (so the timeline shows what a live run would have
computed), with a lossless source: every frame is analysed, none dropped. `--out DIR` is a folder
for this video's results (`timeline.json`, `.png`, `.csv`); without it they go next to the video,
named after it (`talk.timeline.json`), so several videos can share their folder. Existing files
are refused unless --overwrite. Ctrl-C or SIGTERM stops the run and still writes the
timeline of what was analysed (marked partial), and finalizes the --record file.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from emoview.realtime.annotate import Overlay
from emoview.realtime.console import stderr
from emoview.realtime.errors import EmoviewError, InputError
from emoview.realtime.files import unwritable
from emoview.realtime.commands.live import add_analysis_options, check_record, open_analyzer, open_sink, report_recording
from emoview.realtime.monitor import FPSMonitor
from emoview.realtime.pipeline import FrameResult
from emoview.realtime.recorder import VideoSink
from emoview.realtime.session import RunStats, Session
from emoview.realtime.signals import hold_signals
from emoview.realtime.sources import VideoSource
from emoview.realtime.timeline import Timeline, TimelineBuilder, run_details


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT",
        help="a video file (every frame, in order); or several, folders (searched recursively), globs "
        "such as 'clips/**/*.mp4', or a .txt file listing paths: a batch, written under --out",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="folder for this video's timeline.json/.png/.csv (default: next to the video, as VIDEO_NAME.timeline.*; created if missing); "
                     "a batch: one VIDEO_NAME.timeline.* per video in the inputs' folder tree, plus index.csv and index.json")
    out.add_argument("--csv", action="store_true", help="also write the timeline as CSV, one row per face and second")
    out.add_argument("--record", metavar="OUT.mp4", help="also record the annotated video (H.264 mp4)")
    out.add_argument("--mesh", action="store_true", help="draw the face landmarks in the --record video")
    out.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_analysis_options(parser)
    add_batch_options(parser)
    parser.epilog = (
        "writes timeline.json (per face, one entry per second, null while the face is away, and a summary) "
        "and timeline.png into --out DIR, or VIDEO_NAME.timeline.json and .png next to the video; --csv adds the CSV. "
        "A batch writes DIR/<path under the inputs' common folder>.timeline.json (.png, .csv) per video and DIR/index.csv "
        "and index.json (status, seconds, faces, dominant emotion, fps, error per input); a rerun skips what is done; "
        "exit status 1 if any video failed"
    )


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import positive_int

    group = parser.add_argument_group("batch (many videos)")
    group.add_argument("--workers", type=positive_int, metavar="N",
                       help="worker processes, each with its own models (default: as many as the cores allow for --threads)")
    group.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="run the workers as Ray actors: no ADDRESS starts Ray on this machine, 'auto' joins the running "
                       "cluster (pip install 'emoview[ray]')")
    group.add_argument("--force", action="store_true",
                       help="analyse every video again (default: skip those whose timelines exist, made with the same models and options)")


def output_paths(video: Path, out_dir: str | None, csv: bool) -> dict[str, Path]:
    folder, name = (Path(out_dir), "timeline") if out_dir else (video.parent, f"{video.stem}.timeline")
    kinds = ("json", "png", "csv") if csv else ("json", "png")
    return {kind: folder / f"{name}.{kind}" for kind in kinds}


def check_outputs(paths: dict[str, Path], overwrite: bool, create: bool) -> None:
    """Refuse before any work: an existing file (without --overwrite), a folder, or an unwritable place."""
    folder = next(iter(paths.values())).parent
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} is a file, not a folder; choose a folder")
    if not folder.exists():
        if not create:
            raise InputError(f"folder {folder} does not exist; create it or pass --out DIR")
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise InputError(f"cannot create --out folder {folder} ({exc.strerror}); choose another folder") from None
    reason = unwritable(folder)
    if reason:
        raise InputError(f"cannot write to {folder} ({reason}); choose another folder with --out DIR")
    for path in paths.values():
        if path.is_dir():
            raise InputError(f"{path} is a folder; remove it or choose another --out DIR")
        if path.exists() and not overwrite:
            raise InputError(f"{path} already exists; add --overwrite to replace it, or choose another --out DIR")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]analysing[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames  {task.fields[fps]:5.1f} fps"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
    )


def run(args: argparse.Namespace) -> int:
    from emoview.realtime.batch_inputs import is_batch

    if is_batch(args.inputs) or args.workers or args.ray or args.force:
        from emoview.realtime.commands.analyze_batch import run_batch

        return run_batch(args)
    video = Path(args.inputs[0])
    paths = output_paths(video, args.out, args.csv)
    if args.record:
        check_record(args.record, args.overwrite)
        if Path(args.record).resolve() == video.resolve():
            raise InputError("--record would overwrite the video being analysed; choose another file name")
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(VideoSource(video))  # checks the video before loading models
        check_outputs(paths, args.overwrite, create=bool(args.out))
        analyzer = open_analyzer(args, stack, offline=True)
        sink = open_sink(args.record, source) if args.record else None
        timeline = TimelineBuilder(analyzer.labels, source.fps)
        stats, error = _run_session(source, analyzer, sink, timeline, mesh=args.mesh)
    if timeline.frames == 0:
        if error is not None:
            raise error
        raise InputError(f"{video} gave no frames; check the file")
    hold_signals()  # (the Session holds already) a second Ctrl-C must not leave half-written files
    data = timeline.build(stats.fps, stats.stopped_by if error is None else "error")
    data.update(run_details(source, analyzer))
    written = _write(Timeline(data, analyzer.labels), paths, video.name)
    _report(stats, data, written, sink)
    if error is not None:
        raise error
    return 130 if stats.stopped_by == "interrupt" else 0


def _run_session(source: VideoSource, analyzer, sink: VideoSink | None, timeline: TimelineBuilder, mesh: bool):
    """Runs to the end (or Ctrl-C); returns (stats, error). A failing recording still yields the timeline."""
    fps = FPSMonitor()
    overlay = Overlay(analyzer.labels, mesh=mesh) if sink is not None else None
    with progress_bar() as bar:
        task = bar.add_task("analyse", total=source.frame_count or None, fps=0.0)

        def on_result(result: FrameResult) -> None:
            timeline.add(result)
            fps.tick()
            bar.update(task, advance=1, fps=fps.fps)

        session = Session(source, analyzer, overlay, sink, None, on_result=on_result)
        try:
            return session.run(), None
        except EmoviewError as exc:
            session.stats.stopped_by = "error"
            return session.stats, exc


def _write(timeline: Timeline, paths: dict[str, Path], title: str) -> list[Path]:
    timeline.to_json(paths["json"])
    if "csv" in paths:
        timeline.to_csv(paths["csv"])
    timeline.plot(paths["png"], title=title)
    return list(paths.values())


def _report(stats: RunStats, data: dict, written: list[Path], sink: VideoSink | None) -> None:
    summary = data["summary"]
    how = {"end": "", "interrupt": " (interrupted: partial timeline)", "error": " (stopped by an error: partial timeline)"}
    line = (
        f"{summary['frames_analysed']} frames{how.get(stats.stopped_by, '')}, {summary['seconds']} s of video, "
        f"{summary['faces']} face(s), {stats.fps:.1f} fps"
    )
    if summary["dominant_emotion"]:
        line += f"; mostly {summary['dominant_emotion']} ({summary['time_share'][summary['dominant_emotion']] * 100:.0f}% of face time)"
    stderr.print(line)
    for path in written:
        stderr.print(f"wrote {path}")
    if sink is not None:
        report_recording(stats, sink)
