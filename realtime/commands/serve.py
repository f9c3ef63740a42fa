"""`emoview serve`: the live analyzer in a browser, for any number of viewers, or for a browser's camera.

One analysis runs in a background thread (`LiveAnalysis`); the web server (Starlette on uvicorn,
the optional `web` extra) runs in the main thread and only reads what the analysis publishes. The
port is bound before the models load, so a busy port is a one-line error, and the URL printed is
one that already accepts connections. Ctrl-C or SIGTERM stop the server, then the analysis, and a
recording in progress is finalized; the exit code is the CLI's for an interrupt (130).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import socket
import ssl

from emoview.realtime.annotate import Overlay
from emoview.realtime.broadcast import LiveAnalysis
from emoview.realtime.commands.live import add_analysis_options, add_camera_options, camera_arg, open_analyzer, report
from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.realtime.looping_source import LoopingVideoSource
from emoview.realtime.pushed_source import PushedSource
from emoview.realtime.recording_switch import check_recordings_folder
from emoview.realtime.signals import hold_signals
from emoview.realtime.sources import CameraSource, VideoSource

WEB_EXTRA_HINT = "pip install 'emoview[web]'"


def configure(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input (one of)").add_mutually_exclusive_group()
    group.add_argument("--camera", type=camera_arg, metavar="N", help="camera index, or a stream URL or device path (default: 0)")
    group.add_argument("--video", metavar="FILE", help="a video file, played at its frame rate")
    group.add_argument("--browser-camera", action="store_true", help="the camera of the browser that opens the page (frames sent to POST /frame)")
    add_camera_options(parser)
    video = parser.add_argument_group("video")
    video.add_argument("--loop", action="store_true", help="play --video again from the start when it ends")
    video.add_argument("--fast", action="store_true", help="analyse --video as fast as possible, every frame, instead of at its frame rate")
    web = parser.add_argument_group("server")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    web.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    web.add_argument("--ssl-certfile", metavar="PEM", help="serve https with this certificate: browsers give the camera to https pages on other machines")
    web.add_argument("--ssl-keyfile", metavar="PEM", help="the certificate's private key")
    web.add_argument("--record-dir", default=".", metavar="DIR", help="folder for recordings started from the page (default: the current folder)")
    web.add_argument("--mesh", action="store_true", help="draw the face landmarks")
    add_analysis_options(parser)
    parser.epilog = (
        "endpoints: GET / (the page), /stream.mjpg, /events, /session.json, /timeline.json, /timeline.csv; "
        "POST /frame (--browser-camera), /record/start, /record/stop. Needs " + WEB_EXTRA_HINT
    )


def _web_stack():
    """uvicorn and the app, or a one-line hint: the web server is an optional extra."""
    try:
        import uvicorn

        from emoview.realtime.commands.serve_http import StoppingServer, build_app
    except ModuleNotFoundError as exc:
        raise InputError(f"emoview serve needs the web extra (missing {exc.name!r}); install it with {WEB_EXTRA_HINT}") from None
    return uvicorn, StoppingServer, build_app


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, before anything slow starts: a taken port or bad address fails at once."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a port number; use 1-65535, or 0 for any free port")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise InputError(f"--host {host} is not an address of this machine; use 127.0.0.1 (default) or 0.0.0.0") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    return sock


def url_of(sock: socket.socket, host: str, https: bool) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if https else 'http'}://{shown}:{port}/"


def check_ssl(args: argparse.Namespace) -> None:
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise InputError("--ssl-certfile and --ssl-keyfile go together; pass both, or neither for plain http")
    for path in filter(None, (args.ssl_certfile, args.ssl_keyfile)):
        if not os.path.isfile(path):
            raise InputError(f"{path} does not exist; check the --ssl-certfile/--ssl-keyfile path")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def check_source_options(args: argparse.Namespace) -> None:
    """Options for another kind of source are refused: silently ignored, they would mislead."""
    if (args.loop or args.fast) and not args.video:
        raise InputError("--loop and --fast are for --video FILE; remove them or pass --video")
    camera_only = [f"--{name}" for name in ("width", "height", "fps") if getattr(args, name) is not None]
    if camera_only and (args.video or args.browser_camera):
        source = "--video" if args.video else "--browser-camera (the page asks for 640x480)"
        raise InputError(f"{'/'.join(camera_only)} set what a camera captures, not {source}; drop {' '.join(camera_only)}")


def open_source(args: argparse.Namespace):
    if args.browser_camera:
        return PushedSource()
    if args.video:
        paced = not args.fast
        return LoopingVideoSource(args.video, paced=paced) if args.loop else VideoSource(args.video, paced=paced)
    return CameraSource(0 if args.camera is None else args.camera, args.width, args.height, args.fps)


def run(args: argparse.Namespace) -> int:
    uvicorn, StoppingServer, build_app = _web_stack()
    check_source_options(args)
    check_recordings_folder(args.record_dir)
    check_ssl(args)
    with contextlib.ExitStack() as stack:
        sock = bind(args.host, args.port)
        stack.callback(sock.close)
        source, analyzer = open_inputs(args, stack)
        live = LiveAnalysis(source, analyzer, Overlay(analyzer.labels, mesh=args.mesh), args.record_dir, on_end=say_input_ended)
        config = uvicorn.Config(build_app(live), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3,
                                ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
        try:
            config.load()
        except (ssl.SSLError, OSError) as exc:
            raise InputError(f"cannot serve https with --ssl-certfile/--ssl-keyfile ({exc}); check both PEM files") from None
        server = StoppingServer(config, on_exit=live.broadcast.shutdown)
        if not is_loopback(args.host):
            stderr.print(f"[yellow]listening on {args.host}: anyone who can reach this machine can watch and record[/]")
        stderr.print(f"emoview serve: {source.name} at {url_of(sock, args.host, bool(args.ssl_certfile))} (Ctrl-C to stop)")
        interrupted = serve_until_stopped(live, server, sock)
    return 130 if interrupted else 0


def open_inputs(args: argparse.Namespace, stack: contextlib.ExitStack):
    """(source, analyzer): a bad file fails before the models load; a camera opens last, so its first frame is fresh."""
    early = bool(args.video or args.browser_camera)
    source = stack.enter_context(open_source(args)) if early else None
    analyzer = open_analyzer(args, stack)
    if source is None:
        source = stack.enter_context(open_source(args))
    return source, analyzer


def say_input_ended(live: LiveAnalysis) -> None:
    """Called from the analysis thread when the input stops by itself; the server stays up."""
    if live.error:
        stderr.print(f"[red]the analysis stopped:[/] {live.error}; the page stays up, Ctrl-C to stop")
    elif live.state == "ended":
        stderr.print(f"{live.source.name} ended: the page, its last frame and the timeline stay up; Ctrl-C to stop")


def serve_until_stopped(live: LiveAnalysis, server, sock: socket.socket) -> bool:
    """Runs until Ctrl-C/SIGTERM, then stops the analysis and finalizes a recording; True if interrupted."""
    interrupted = False
    try:
        live.start()
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands the signal that stopped it back to the CLI's handler
        interrupted = True
    finally:
        hold_signals()  # from here on a second Ctrl-C must not cut the recording's finalization short
        live.broadcast.shutdown()
        stats = live.stop()
    interrupted = interrupted or server.signalled
    stats.stopped_by = {"ended": "end", "error": "error"}.get(live.state, "interrupt" if interrupted else "user")
    report(stats, live.source, None)
    for recording in live.recorder.finished:
        stderr.print(f"recorded {recording.frames} frames to {recording.path} ({recording.codec or 'no codec'})")
    if live.error:
        stderr.print(f"[red]the analysis had stopped:[/] {live.error}")
    return interrupted
