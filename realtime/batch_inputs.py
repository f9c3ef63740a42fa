"""Many videos from one command line: files, folders (recursively), globs and list files.

Each video gets a `key`: its path relative to the deepest folder that holds every input, which is
where its results go under --out. Mirroring the tree matters because two folders often hold files
of the same name (day1/cam.mp4, day2/cam.mp4): a flat output folder would let one overwrite the
other. An input that names nothing (a missing path, a glob that matches no file) is kept as an
item with a `problem`, so it becomes a failed row of the index instead of stopping the batch.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp"}
LIST_SUFFIXES = {".txt", ".list", ".lst"}  # a file of paths, one per line (# starts a comment)
GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class BatchItem:
    shown: str  # the path as the user named it: the index's `path`
    path: Path | None = None  # absolute; None when the input names nothing
    key: str = ""  # where its results go under --out (posix, relative)
    problem: str | None = None  # why it cannot be analysed at all


def _absolute(path: Path) -> Path:
    """Absolute without resolving links: a linked file keeps the place (and name) the user gave it."""
    return Path(os.path.abspath(path))


def is_batch(inputs: list[str]) -> bool:
    """One existing video file (or one path that does not exist) is the single-video command of old."""
    if len(inputs) != 1:
        return True
    path = Path(inputs[0])
    if path.is_dir() or (path.is_file() and path.suffix.lower() in LIST_SUFFIXES):
        return True
    return not path.exists() and bool(GLOB_CHARACTERS & set(inputs[0]))


def folder_videos(folder: Path) -> list[Path]:
    """Video files under `folder`, recursively, by suffix; hidden files and folders are left out."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_SUFFIXES]
    return found


def list_file_entries(path: Path) -> list[str]:
    """The paths a list file names; relative ones are relative to the list file's folder."""
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line if os.path.isabs(line) else os.path.normpath(path.parent / line))
    return entries


def _expand(text: str, folders: list[Path], depth: int = 0) -> list[BatchItem]:
    path = Path(text)
    if path.is_dir():
        folders.append(_absolute(path))
        return [BatchItem(str(p), _absolute(p)) for p in folder_videos(path)]
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES and depth == 0:
        return [item for entry in list_file_entries(path) for item in _expand(entry, folders, depth + 1)]
    if path.is_file():
        return [BatchItem(text, _absolute(path))]
    if GLOB_CHARACTERS & set(text):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            return [BatchItem(text, problem=f"{text} matches no file; check the pattern")]
        return [item for match in matches for item in _expand(match, folders, depth + 1)]
    return [BatchItem(text, problem=f"{text} does not exist; check the path")]


def expand_inputs(inputs: list[str]) -> list[BatchItem]:
    """Every video the inputs name, once each (by absolute path), in the order given, with its key."""
    folders: list[Path] = []
    items, seen = [], set()
    for text in inputs:
        for item in _expand(text, folders):
            if item.path is None or item.path not in seen:
                items.append(item)
                if item.path is not None:
                    seen.add(item.path)
    found = [item.path for item in items if item.path is not None]
    if not found:
        return items
    root = Path(os.path.commonpath([p.parent for p in found] + folders))
    return [item if item.path is None else BatchItem(item.shown, item.path, item.path.relative_to(root).as_posix()) for item in items]
