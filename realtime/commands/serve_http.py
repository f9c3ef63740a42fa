"""The HTTP side of `emoview serve`: the page, the frame stream, live updates, frames in, recording.

Every route reads the shared `LiveAnalysis` and never drives the pipeline itself: streams wait
for the newest value of a slot (in a worker thread, a second at most, so a closed connection or a
stopping server is noticed), and a browser camera's frame is pushed into the source's one-frame
slot. A request that is wrong in itself gets a 4xx with a one-line JSON `error`; the session goes on.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from importlib import resources

import cv2
import numpy as np
import PIL.Image
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from emoview.realtime.annotate import colour_for
from emoview.realtime.broadcast import LiveAnalysis
from emoview.realtime.errors import EmoviewError
from emoview.realtime.pushed_source import PushedSource
from emoview.realtime.timeline import csv_text

MAX_FRAME_BYTES = 5 * 1024 * 1024
MAX_FRAME_PIXELS = 4096 * 4096
UPDATE_INTERVAL_S = 0.2  # /events: a few updates a second is smooth for bars and charts, and cheap
FRAME_RESULT_TIMEOUT_S = 30.0
WAIT_S = 1.0  # longest a stream's worker thread waits before looking at its connection again
BOUNDARY = "frame"
ENDPOINTS = "GET / /stream.mjpg /events /session.json /timeline.json /timeline.csv; POST /frame /record/start /record/stop"
STATIC = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"), "/style.css": ("style.css", "text/css")}


class StoppingServer(uvicorn.Server):
    """uvicorn's server that also ends the viewers' streams when asked to stop (they never end on their own)."""

    def __init__(self, config: uvicorn.Config, on_exit) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self.signalled = False

    def handle_exit(self, sig, frame) -> None:
        self.signalled = True
        self._on_exit()
        super().handle_exit(sig, frame)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(live: LiveAnalysis) -> Starlette:
    files = resources.files("emoview.realtime.web")
    static = {path: (files.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}
    browser_camera = isinstance(live.source, PushedSource)

    async def page(request: Request) -> Response:
        body, kind = static[request.url.path]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def session(request: Request) -> Response:
        return JSONResponse({
            "source": live.source.name, "kind": live.source.kind, "browser_camera": browser_camera,
            "labels": list(live.labels), "colours": {name: _css_colour(name) for name in live.labels},
            "max_frame_bytes": MAX_FRAME_BYTES, "update_interval_s": UPDATE_INTERVAL_S,
        })

    async def stream(request: Request) -> Response:
        broadcast = live.broadcast

        async def parts():
            with broadcast.watch():
                seen = 0
                while not broadcast.jpeg.closed:
                    seq, jpeg = await run_in_threadpool(broadcast.jpeg.wait_newer, seen, WAIT_S)
                    if seq == seen or jpeg is None:
                        continue
                    seen = seq
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                    yield head + jpeg + b"\r\n"

        return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}", headers=_no_store())

    async def events(request: Request) -> Response:
        updates = live.broadcast.updates

        async def messages():
            yield "retry: 2000\n\n"
            seen = 0
            while not updates.closed:
                seq, update = await run_in_threadpool(updates.wait_newer, seen, WAIT_S)
                if seq == seen or update is None:
                    yield ": waiting\n\n"  # a comment: keeps proxies from closing an idle stream
                    continue
                seen = seq
                yield f"data: {json.dumps({**update, **live.status()})}\n\n"
                await asyncio.sleep(UPDATE_INTERVAL_S)

        return StreamingResponse(messages(), media_type="text/event-stream", headers=_no_store())

    async def frame(request: Request) -> Response:
        if not browser_camera:
            return error(409, f"this session analyses {live.source.name}; start emoview serve --browser-camera to send frames")
        body = await _read_limited(request)
        image = await run_in_threadpool(_decode, body)
        try:
            timestamp_ms = live.source.push(image)
        except RuntimeError:
            return error(409, "the session has ended; restart emoview serve")
        update = await run_in_threadpool(_result_for, live, timestamp_ms)
        if update is None:
            return error(503, f"no result within {FRAME_RESULT_TIMEOUT_S:.0f} s (the session has ended or is overloaded)")
        return JSONResponse({**update, **live.status()})

    async def timeline_json(request: Request) -> Response:
        data = await run_in_threadpool(live.timeline_data)
        return JSONResponse(data, headers=_download("timeline.json"))

    async def timeline_csv(request: Request) -> Response:
        data = await run_in_threadpool(live.timeline_data)
        return Response(csv_text(data, live.labels), media_type="text/csv", headers=_download("timeline.csv"))

    async def record_start(request: Request) -> Response:
        if live.state != "running":
            return error(409, f"the session is {live.state}: there are no frames to record")
        try:
            path = await run_in_threadpool(live.recorder.start)
        except RuntimeError as exc:
            return error(409, f"{exc}; POST /record/stop first")
        except EmoviewError as exc:  # the recordings folder went away or filled up meanwhile
            return error(500, str(exc))
        live.updates_changed()
        return JSONResponse({"recording": str(path)})

    async def record_stop(request: Request) -> Response:
        recording = await run_in_threadpool(live.recorder.stop)
        if recording is None:
            return error(409, "not recording; POST /record/start first")
        live.updates_changed()
        return JSONResponse({**recording.to_dict(), "error": live.recorder.error})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return error(404, f"no such page {request.url.path}; endpoints: {ENDPOINTS}")
        if exc.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}; endpoints: {ENDPOINTS}")
        return error(exc.status_code, str(exc.detail))

    routes = [Route(path, page) for path in STATIC] + [
        Route("/session.json", session),
        Route("/stream.mjpg", stream),
        Route("/events", events),
        Route("/frame", frame, methods=["POST"]),
        Route("/timeline.json", timeline_json),
        Route("/timeline.csv", timeline_csv),
        Route("/record/start", record_start, methods=["POST"]),
        Route("/record/stop", record_stop, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _css_colour(label: str) -> str:
    """The overlay's colour for an emotion, so the page's bars and lines match the frames'."""
    b, g, r = colour_for(label)
    return f"#{r:02x}{g:02x}{b:02x}"


def _no_store() -> dict:
    return {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _download(name: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


async def _read_limited(request: Request) -> bytes:
    """The body, refused with 413 past MAX_FRAME_BYTES (by its declared length, or while it streams in)."""
    limit_text = f"the limit is {MAX_FRAME_BYTES // (1024 * 1024)} MB: send a smaller JPEG"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FRAME_BYTES:
        raise HTTPException(413, f"frame of {int(declared) / 1e6:.1f} MB refused; {limit_text}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FRAME_BYTES:
            raise HTTPException(413, f"frame over {MAX_FRAME_BYTES // (1024 * 1024)} MB refused; {limit_text}")
    return bytes(body)


def _decode(body: bytes) -> np.ndarray:
    """The frame as BGR pixels; 415 if it is no image, 413 if it would decode to more than MAX_FRAME_PIXELS
    (a small file can hold a huge, flat picture: its size is read from the header first)."""
    try:
        with PIL.Image.open(io.BytesIO(body)) as header:
            width, height = header.size
    except (PIL.UnidentifiedImageError, OSError, ValueError):
        width = height = 0
    if width * height > MAX_FRAME_PIXELS:
        raise HTTPException(413, f"a frame of {width}x{height} pixels is too large; send at most {MAX_FRAME_PIXELS // 10**6} megapixels")
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) if body else None
    if image is None:
        raise HTTPException(415, "the body is not an image; POST one JPEG (or PNG) per request")
    return image


def _result_for(live: LiveAnalysis, timestamp_ms: float) -> dict | None:
    """The update of the pushed frame, or of the first one after it if it was dropped for a newer one."""
    updates = live.broadcast.updates
    deadline = time.monotonic() + FRAME_RESULT_TIMEOUT_S
    seen, update = updates.get()
    while True:
        if update is not None and update.get("timestamp_ms", -1.0) >= timestamp_ms:
            return update
        if live.state != "running" or updates.closed or time.monotonic() > deadline:
            return None
        seen, update = updates.wait_newer(seen, WAIT_S)
