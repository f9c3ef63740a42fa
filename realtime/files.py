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

from emoview.realtime.errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def replacing(path: str | os.PathLike):
    """Yields a temporary path beside `path`; renamed onto `path` if the block succeeds, else removed.
    A target that exists and is not a regular file (/dev/null, a FIFO, /dev/stdout) is written to
    directly: renaming onto it would replace the device with a file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        yield path
        return
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


def check_output_folder(folder: str | os.PathLike, option: str, shown: str | os.PathLike | None = None) -> Path:
    """Refuse, before any work, a folder results cannot go into: it must be a writable folder, or
    creatable (its nearest existing parent is a writable folder). `shown`: the path the user gave."""
    folder = Path(folder)
    shown = folder if shown is None else shown
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot write {option} {shown}: {existing} is a file, not a folder; choose another {option}")
    reason = unwritable(existing)
    if reason:
        raise InputError(f"cannot write {option} {shown} in {existing} ({reason}); choose another {option}")
    return folder


def check_output_file(
    path: str | os.PathLike, option: str, overwrite: bool = True, create_folder: bool = False, example: str = "results.json"
) -> Path:
    """Refuse, before any work, an output file that cannot or should not be written; one line each.

    `overwrite`: an existing file may be replaced; `create_folder`: a missing folder is created."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name in it, such as {path / example}")
    if path.exists() and not overwrite:
        raise InputError(f"{option} {path} already exists; add --overwrite to replace it, or choose another {option}")
    if not create_folder and not path.parent.exists():
        raise InputError(f"cannot write {option} {path}: folder {path.parent} does not exist; create it or choose another {option}")
    check_output_folder(path.parent, option, shown=path)
    return path


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
