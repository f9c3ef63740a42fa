"""`emoview` / `emoview live`: a camera, video or image folder analysed live, shown and/or recorded."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from emoview.realtime.annotate import Overlay
from emoview.realtime.classifier import EmotionClassifier
from emoview.realtime.commands.cli import add_min_confidence, add_min_face, add_model_options, positive_int
from emoview.realtime.console import stderr
from emoview.realtime.display import StillsWindow, Window, display_available
from emoview.realtime.errors import EmoviewError, InputError
from emoview.realtime.face_model import resolve_face_model
from emoview.realtime.face_search import MIN_FACE
from emoview.realtime.faces import StillFaceFinder
from emoview.realtime.pipeline import Analyzer
from emoview.realtime.recorder import VideoSink, check_output_path
from emoview.realtime.session import RunStats, Session
from emoview.realtime.signals import hold_signals
from emoview.realtime.sources import CameraSource, ImageFolderSource, Source, VideoSource
from emoview.realtime.stills import MAX_FACES
from emoview.realtime.video_faces import VideoFaceFinder


def camera_arg(text: str) -> int | str:
    """A camera number, or anything else OpenCV opens as a live stream (URL, device path)."""
    return int(text) if text.strip().lstrip("-").isdigit() else text


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def add_source_options(parser: argparse.ArgumentParser, default_camera: bool = True) -> None:
    group = parser.add_argument_group("input (one of)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--camera", type=camera_arg, metavar="N",
        help="camera index, or a stream URL or device path (rtsp://..., /dev/video2)" + (" (default: 0)" if default_camera else ""),
    )
    exclusive.add_argument("--video", metavar="FILE", help="a video file, every frame analysed in order")
    exclusive.add_argument("--images", metavar="DIR", help="a folder of images, each analysed on its own")
    group.add_argument("--seconds", type=positive_seconds, metavar="S",
                       help="--images: show each image S seconds (default: until space/right arrow; left arrow goes back) "
                       "and hold it S seconds in a recording (default: 1)")
    add_camera_options(parser)


def add_camera_options(parser: argparse.ArgumentParser) -> None:
    camera = parser.add_argument_group("camera")
    camera.add_argument("--width", type=positive_int, help="requested capture width")
    camera.add_argument("--height", type=positive_int, help="requested capture height")
    camera.add_argument("--fps", type=positive_int, help="requested capture frame rate")


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis")
    group.add_argument("--max-faces", type=positive_int, metavar="N", help=f"faces to analyse per frame (default: 1; {MAX_FACES} for --images)")
    add_min_confidence(parser, group)
    add_min_face(parser, group)
    group.add_argument("--window", type=positive_int, metavar="T", help="frames per model window (default: the model's)")
    add_model_options(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    add_source_options(parser)
    add_analysis_options(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--record", metavar="OUT.mp4", help="record the annotated frames (H.264 mp4)")
    out.add_argument("--overwrite", action="store_true", help="replace an existing --record file")
    out.add_argument("--no-display", action="store_true", help="no window (automatic when there is no display)")
    out.add_argument("--mesh", action="store_true", help="draw the face landmarks")
    out.add_argument("--paced", action="store_true", help="play --video at its frame rate, dropping frames like a camera")


def open_source(args: argparse.Namespace, paced: bool = False) -> Source:
    if getattr(args, "video", None):
        return VideoSource(args.video, paced=paced)
    if getattr(args, "images", None):
        return ImageFolderSource(args.images, fps=1.0 / (getattr(args, "seconds", None) or 1.0))
    camera = 0 if args.camera is None else args.camera
    return CameraSource(camera, args.width, args.height, args.fps)


def open_analyzer(args: argparse.Namespace, stack: contextlib.ExitStack, stills: bool = False, offline: bool = False) -> Analyzer:
    """The emotion model first (fast to check), then the face model; both closed by `stack`.
    `offline` (a file analysed frame by frame) waits for each search for small faces, so what is
    found does not depend on the machine's load: the same timeline as `emoview.analyze_video`."""
    classifier = EmotionClassifier(args.model, threads=args.threads)
    face_model = resolve_face_model(args.face_model)
    confidence = args.min_confidence
    if stills:  # faces found as `emoview predict` finds them: the same faces, tiny crops included
        finder = StillFaceFinder(face_model, max_faces=args.max_faces or MAX_FACES, min_confidence=confidence,
                                 min_face=getattr(args, "min_face", None))
    else:
        finder = VideoFaceFinder(face_model, max_faces=args.max_faces or 1, min_confidence=confidence,
                                 min_face=getattr(args, "min_face", None) or MIN_FACE, wait_for_discovery=offline)
    return Analyzer(classifier, stack.enter_context(finder), window=args.window, stills=stills)


def open_sink(path: str, source: Source) -> VideoSink:
    """Images of many sizes share one canvas, each letterboxed; a video file keeps its size and,
    when every frame is recorded (not --paced), its sound."""
    if isinstance(source, ImageFolderSource):
        return VideoSink(path, source.fps, size=source.canvas_size())
    lossless_file = isinstance(source, VideoSource) and not source.live
    return VideoSink(path, source.fps, audio_from=source.path if lossless_file else None)


def report_recording(stats: RunStats, sink: VideoSink) -> None:
    sound = ", with sound" if sink.sound else ""
    stderr.print(f"recorded {stats.recorded} frames to {sink.path} ({sink.codec or 'no codec'}{sound})", markup=False)
    if sink.finish_problem:
        stderr.print(f"[yellow]warning:[/] {sink.path} was kept as written (fragmented, playable, without sound): {sink.finish_problem}")


# what the recorder writes (H.264 in fragmented MP4) keeps its promises in these containers only;
# others (mkv, avi) play but lose the fragments that keep a killed recording playable
RECORD_SUFFIXES = (".mp4", ".m4v", ".mov")


def check_record(path: str, overwrite: bool) -> None:
    """--record: a file the recorder can write and may replace, refused before any work."""
    if Path(path).suffix.lower() not in RECORD_SUFFIXES and not Path(path).is_dir():  # a folder: said below
        raise InputError(
            f"--record {path}: a recording is an H.264 mp4, and the name does not end in "
            f"{', '.join(RECORD_SUFFIXES)}; name it e.g. {Path(path).with_suffix('.mp4')}"
        )
    check_output_path(path, overwrite)


def check_source_options(args: argparse.Namespace) -> None:
    """Options for another kind of source are refused: silently ignored, they would mislead."""
    source = "--video" if args.video else "--images" if args.images else "a camera"
    camera_only = [f"--{name}" for name in ("width", "height", "fps") if getattr(args, name) is not None]
    if camera_only and (args.video or args.images):
        raise InputError(f"{'/'.join(camera_only)} set what a camera captures, not {source}; drop {' '.join(camera_only)}")
    if args.paced and not args.video:
        raise InputError(f"--paced plays a --video at its own frame rate, and {source} has none; drop --paced")
    if args.seconds and not args.images:
        raise InputError("--seconds is how long each image of --images stays; drop it, or pass --images DIR")


def run(args: argparse.Namespace) -> int:
    check_source_options(args)
    if args.record:
        check_record(args.record, args.overwrite)
    show = not args.no_display
    headless = show and not display_available()
    if headless:
        show = False
    with contextlib.ExitStack() as stack:
        files = bool(args.video or args.images)
        # a bad file or folder fails before the models load; a camera opens last, so its first frame is fresh
        source = stack.enter_context(open_source(args, paced=args.paced)) if files else None
        analyzer = open_analyzer(args, stack, stills=bool(args.images))
        if source is None:
            source = stack.enter_context(open_source(args, paced=args.paced))
        stills = isinstance(source, ImageFolderSource)
        sink = open_sink(args.record, source) if args.record else None
        title = f"emoview - {source.name}"
        window = (StillsWindow(title, args.seconds) if stills else Window(title)) if show else None
        if headless:  # said once the inputs are known good, so a bad input stays a one-line error
            stderr.print("[yellow]no display found: running without a window[/] (use --record OUT.mp4 to keep the result)")
        elif not show and not sink:
            stderr.print("[yellow]no window and no --record: only the summary will be printed[/]")
        session = Session(source, analyzer, Overlay(analyzer.labels, mesh=args.mesh, stills=stills), sink, window)
        try:
            stats = session.run()
        except EmoviewError:  # a reader or the recording failed mid-run: say how far it got, then why
            session.stats.stopped_by = "error"
            report(session.stats, source, sink)
            raise
        hold_signals()  # the run is over and finalized (the Session holds already): a late Ctrl-C must not cost its report
        return conclude(stats, source, sink)


def conclude(stats: RunStats, source: Source, sink: VideoSink | None) -> int:
    """Report a finished run; a run that analysed nothing, or a camera that went away, is an error."""
    if stats.frames == 0 and stats.stopped_by == "end":
        if isinstance(source, ImageFolderSource) and source.skipped:
            raise InputError(
                f"none of the {len(source.paths)} image files in {source.folder} could be read "
                f"(e.g. {source.skipped[0].name}); check the files or pass another --images DIR"
            )
        raise InputError(f"{source.name} gave no frames; check the input")
    report(stats, source, sink)
    if source.kind == "camera" and source.ended_early and stats.stopped_by == "end":
        kept = f"; the {stats.recorded} frames recorded to {sink.path} are finalized" if sink else ""
        raise InputError(
            f"{source.name} stopped sending frames after {stats.frames} (unplugged, or its stream ended){kept}; "
            "reconnect it and start again"
        )
    if source.kind == "video" and source.ended_early and stats.stopped_by == "end":
        stderr.print(f"[yellow]warning:[/] {source.name} ended after {source.frames_read} of {source.frame_count} frames: the file is truncated or damaged; the frames before the damage were analysed")
    return 130 if stats.stopped_by == "interrupt" else 0


def report(stats: RunStats, source: Source, sink: VideoSink | None) -> None:
    how = {"end": "end of input", "user": "stopped by user", "interrupt": "interrupted", "error": "stopped by an error"}[stats.stopped_by]
    line = (
        f"{stats.frames} frames ({how}), faces in {stats.frames_with_faces}, {stats.fps:.1f} fps, "
        f"latency p50 {stats.latency.percentile(50):.0f} ms"
    )
    if source.live:
        line += f", {stats.dropped} dropped"
    stderr.print(line)
    if isinstance(source, ImageFolderSource) and source.skipped:
        stderr.print(f"[yellow]skipped {len(source.skipped)} unreadable image(s)[/], e.g. {source.skipped[0]}")
    if sink is not None:
        report_recording(stats, sink)
