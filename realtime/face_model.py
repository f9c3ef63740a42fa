"""Finding MediaPipe's face_landmarker.task: flag, environment, user cache, or a verified download.

mediapipe's wheels ship no face model, so emoview fetches the official bundle once and checks its
sha256 before anything loads it: a partial or tampered download never reaches the cache.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from emoview.realtime.console import stderr
from emoview.realtime.errors import ModelError
from emoview.realtime.files import sha256_of

FACE_MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    "face_landmarker.task"
)
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_MODEL_ENV = "EMOVIEW_FACE_MODEL"
FACE_MODEL_URL_ENV = "EMOVIEW_FACE_MODEL_URL"
FILE_NAME = "face_landmarker.task"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emoview"


def verify(path: Path, origin: str) -> Path:
    """Refuse a file that is not the official bundle (truncated, corrupt or another model)."""
    if not path.is_file():
        raise ModelError(
            f"face model not found at {path} ({origin}); pass --face-model PATH to {FILE_NAME} or set "
            f"{FACE_MODEL_ENV}=PATH to it, or remove the setting to download it"
        )
    actual = sha256_of(path)
    if actual != FACE_MODEL_SHA256:
        raise ModelError(
            f"face model {path} ({origin}) has sha256 {actual[:12]}…, not the official "
            f"{FACE_MODEL_SHA256[:12]}…; it is damaged or another file: download {FACE_MODEL_URL} again"
        )
    return path


def locate_face_model(explicit: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Where the face model comes from, unchecked: (path, origin); origin is --face-model,
    $EMOVIEW_FACE_MODEL, cache, or download (not there yet: the cache path it would go to)."""
    if explicit:
        return Path(explicit).expanduser(), "--face-model"
    from_env = os.environ.get(FACE_MODEL_ENV)
    if from_env:
        return Path(from_env).expanduser(), f"${FACE_MODEL_ENV}"
    cached = cache_dir() / FILE_NAME
    return cached, "cache" if cached.is_file() else "download"


def resolve_face_model(explicit: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The path of a verified face_landmarker.task, downloading it into the cache if needed."""
    path, origin = locate_face_model(explicit)
    if origin != "download":
        return verify(path, origin)
    if not download:
        raise ModelError(f"no face model: put {FILE_NAME} at {path}, set {FACE_MODEL_ENV}=PATH or pass --face-model PATH")
    return download_face_model(path, os.environ.get(FACE_MODEL_URL_ENV, FACE_MODEL_URL))


def download_face_model(target: Path, url: str) -> Path:
    """Download to a temporary file beside `target`; only a file with the right hash is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _fetch(url, out)
        actual = sha256_of(tmp)
        if actual != FACE_MODEL_SHA256:
            raise ModelError(
                f"downloaded face model from {url} has sha256 {actual[:12]}…, expected "
                f"{FACE_MODEL_SHA256[:12]}…; not saved. Try again, or download it yourself and "
                "pass --face-model PATH"
            )
        os.replace(tmp, target)
        return target
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(
            f"could not download the face model ({getattr(exc, 'reason', exc)}); download {url} "
            f"yourself and put it at {target}, set {FACE_MODEL_ENV}=PATH to it, or pass --face-model PATH"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def _fetch(url: str, out) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        columns = (
            TextColumn("face model"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        with Progress(*columns, console=stderr, transient=True) as progress:
            task = progress.add_task("download", total=total)
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                progress.update(task, advance=len(block))
