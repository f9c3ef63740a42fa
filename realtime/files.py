"""Result files are written whole or not at all: a temporary file beside the target, then a rename.

An interrupted `analyze`, a full disk or a second Ctrl-C then leaves the previous file (or none),
never half a JSON that a script downstream would choke on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def replacing(path: str | os.PathLike):
    """Yields a temporary path beside `path`; renamed onto `path` if the block succeeds, else removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from other users
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    with replacing(path) as tmp:
        tmp.write_text(text, newline="")
    return Path(path)


def write_with(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """`write(tmp_path)` fills the file (e.g. matplotlib's savefig); the result replaces `path`."""
    with replacing(path) as tmp:
        write(tmp)
    return Path(path)


def unwritable(folder: str | os.PathLike) -> str | None:
    """Why nothing can be created in `folder` (None if a file can): tried, not guessed from mode
    bits, which root ignores and read-only mounts and ACLs override."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
