"""The `emoview` command: a thin dispatcher over one module per command.

Each command module exposes `configure(parser)` and `run(args) -> int`, and is imported only when
its command runs: the live analyzer starts without loading the training stack, and the runtime
never imports torch. User-caused errors become one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass

from emoview.realtime.errors import EmoviewError
from emoview.realtime.signals import StopSignals, handling_stop_signals


@dataclass(frozen=True)
class Command:
    module: str
    summary: str
    configure: str = "configure"  # function names in `module`, for modules serving two commands
    run: str = "run"


COMMANDS: dict[str, Command] = {
    "live": Command("emoview.realtime.commands.live", "analyze a camera or video live, with a window and/or recording (default)"),
    "analyze": Command("emoview.realtime.commands.analyze", "turn a video into a per-second emotion timeline (JSON, CSV, PNG)"),
    "bench": Command("emoview.realtime.commands.bench", "measure FPS and latency per stage against the bare landmarker"),
    "serve": Command("emoview.realtime.commands.serve", "the live analyzer in a browser: frame stream, live charts, a browser's camera"),
    "predict": Command("emoview.realtime.commands.predict", "classify images or folders of images, optionally to JSON"),
    "eval": Command(
        "emoview.realtime.commands.predict", "score the model on an image folder <class>/<file>", "configure_eval", "run_eval"
    ),
    "extract": Command("emoview.train.extract", "cache MediaPipe features of a dataset for training"),
    "train": Command("emoview.train.cli", "train a CNN-BiLSTM from a recipe"),
    "export": Command("emoview.export.cli", "export a trained run to a self-describing ONNX model"),
    "info": Command("emoview.realtime.commands.info", "show the emotion model's card and where the face model comes from"),
}
DEFAULT_COMMAND = "live"
TRAINING_PACKAGES = {"torch", "onnx", "onnxscript", "sklearn"}
TORCH_VERSION = "2.13.0"  # the local CPU wheel (README): installed before the extras, or pip pulls a CUDA build


def add_model_options(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """The options every command that touches faces or the emotion model shares (`threads`: it runs the model)."""
    group = parser.add_argument_group("models")
    group.add_argument("--model", metavar="PATH", help="emotion model (.onnx); default: the one shipped with emoview")
    if threads:
        group.add_argument("--threads", type=thread_count, default=1, metavar="N", help="ONNX Runtime threads (default: 1)")
    add_face_model_option(group)


def add_face_model_option(parser) -> None:
    """Alone for the commands that find faces but use no emotion model (extract, train)."""
    parser.add_argument(
        "--face-model",
        metavar="PATH",
        help="MediaPipe face_landmarker.task; default: $EMOVIEW_FACE_MODEL, then the user cache, "
        "then a verified download",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def unit_interval(text: str) -> float:
    """A confidence between 0 and 1 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_min_confidence(parser: argparse.ArgumentParser, group=None) -> None:
    """--min-confidence, for every command that finds faces."""
    (group or parser).add_argument(
        "--min-confidence", type=unit_interval, default=0.5, metavar="P",
        help="face detection confidence to accept a face, 0..1 (default: 0.5; lower finds more, and more false faces)",
    )


def face_pixels(text: str) -> int:
    """A smallest face size in pixels (argparse type): below SMALLEST_FACE there is no face to read."""
    from emoview.realtime.face_search import SMALLEST_FACE

    value = positive_int(text)
    if value < SMALLEST_FACE:
        raise argparse.ArgumentTypeError(f"must be at least {SMALLEST_FACE} px, not {value}")
    return value


def add_min_face(parser: argparse.ArgumentParser, group=None) -> None:
    """--min-face, for every command that searches pictures for faces."""
    from emoview.realtime.face_search import MIN_FACE

    (group or parser).add_argument(
        "--min-face", type=face_pixels, default=MIN_FACE, metavar="PX",
        help=f"smallest face to search for, in pixels (default: {MIN_FACE}; smaller searches more tiles: slower)",
    )


def thread_count(text: str) -> int:
    """1 to twice the machine's cores: more threads than that only take turns on the same cores
    (slower, not faster), and a typo such as 400 would start 400 threads."""
    value = positive_int(text)
    cores = os.cpu_count() or 1
    if value > 2 * cores:
        raise argparse.ArgumentTypeError(f"must be at most {2 * cores} (twice this machine's {cores} cores), not {value}")
    return value


def _top_level_epilog() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    return (
        "commands (emoview COMMAND --help for each):\n"
        + "\n".join(lines)
        + "\n\nexamples:\n  emoview --camera 0\n  emoview --video talk.mp4 --record talk-annotated.mp4 --no-display\n"
        "  emoview analyze talk.mp4\n  emoview bench --video talk.mp4"
    )


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other error: what is wrong, then where help is."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser(name: str) -> argparse.ArgumentParser:
    command = COMMANDS[name]
    is_default = name == DEFAULT_COMMAND
    parser = OneLineParser(
        prog="emoview" if is_default else f"emoview {name}",
        description=(
            "Real-time facial emotion analysis: every face boxed, labelled and scored, live."
            if is_default
            else command.summary[0].upper() + command.summary[1:] + "."
        ),
        epilog=_top_level_epilog() if is_default else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # global options, taken out of the command line by main() wherever they are; listed for --help
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors (anywhere on the command line)")
    parser.add_argument("--version", action="store_true", help="print emoview's version and exit")
    module = importlib.import_module(command.module)
    getattr(module, command.configure)(parser)
    parser.set_defaults(_run=getattr(module, command.run))
    return parser


def main(argv: list[str] | None = None) -> int:
    program = argv is None  # the `emoview` program itself, not a call from Python code or tests
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("EMOVIEW_DEBUG"))
    argv = [arg for arg in argv if arg != "--debug"]  # global: `emoview --debug analyze X` too
    if "--version" in argv:
        from emoview.realtime.version import emoview_version

        print(f"emoview {emoview_version()}")
        return 0
    name = argv.pop(0) if argv and argv[0] in COMMANDS else DEFAULT_COMMAND
    if debug:
        os.environ["EMOVIEW_DEBUG"] = "1"  # also lets native (MediaPipe, FFmpeg) logs through
    with handling_stop_signals(exiting=program) as signals:
        return _dispatch(name, argv, debug, signals)


def _interrupted() -> int:
    print("emoview: interrupted", file=sys.stderr)
    return 130


def _dispatch(name: str, argv: list[str], debug: bool, signals: StopSignals) -> int:
    try:
        parser = build_parser(name)
        args = parser.parse_args(argv)
        code = int(args._run(args) or 0)
        return 130 if code == 0 and signals.held else code  # finished, but asked to stop meanwhile
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if signals.received and not debug:
            return _interrupted()  # a library may have turned our KeyboardInterrupt into its own error
        if debug:
            raise
        message, code = _error_line(exc)
        print(message, file=sys.stderr)
        return code


def _error_line(exc: Exception) -> tuple[str, int]:
    """The one line a failed command prints, and its exit code."""
    if isinstance(exc, EmoviewError):
        return f"emoview: error: {exc}", exc.exit_code
    if isinstance(exc, ModuleNotFoundError):
        return f"emoview: error: missing Python package {exc.name!r}; {install_hint(exc.name)}", 2
    return f"emoview: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1


def install_hint(package: str | None) -> str:
    """What to install: the training extras go in torch first (any other torch pulls gigabytes)."""
    if package in TRAINING_PACKAGES:
        return (f"`emoview train` and `emoview export` need the training extras: pip install torch=={TORCH_VERSION} first, "
                "then pip install -e '.[train]' in the emoview checkout")
    return "reinstall emoview"


if __name__ == "__main__":
    sys.exit(main())
