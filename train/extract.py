"""`emoview extract`: run MediaPipe over a dataset once and cache the raw result per item.

Why cache raw points (478, 3) and the 52 blendshapes rather than features: a feature spec (layout,
dims, alignment) is cheap to compute from them, so every ablation and recipe reuses one
extraction, which is the slow part (about 13 ms per 48x48 image). Stills go through the runtime's
own `StillFaceFinder` and videos through its `FaceLandmarker` in video mode, so training sees
exactly what `emoview predict` and `emoview live` see.

The cache is keyed by the file's absolute path under a tag of the extraction settings, lives
outside the repo (~/.cache/emoview/features by default), and every entry is written to a temporary
file and renamed: an interrupted run leaves no half-written entry and simply resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from emoview.realtime import faces
from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.realtime.files import check_output_folder
from emoview.train.read_images import is_image_folder, read_image_folder
from emoview.train.read_videos import is_video_folder, read_video_folder

EXTRACT_VERSION = 1


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emoview" / "features"


def settings_tag() -> str:
    """Changing how faces are found must not silently mix old and new entries."""
    text = f"v{EXTRACT_VERSION}|{faces.SMALL_IMAGE}|{faces.CROP_ATTEMPTS}|{faces.TURNED_ATTEMPTS}"
    return "v%d-%s" % (EXTRACT_VERSION, hashlib.sha1(text.encode()).hexdigest()[:8])


def entry_path(cache: Path, item_path: Path) -> Path:
    absolute = Path(os.path.abspath(item_path))
    return Path(cache) / settings_tag() / absolute.relative_to(absolute.anchor).with_name(absolute.name + ".npz")


def save_atomic(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_entry(cache: Path, item_path: Path) -> dict | None:
    """The cached arrays of one item, or None if it was never extracted."""
    path = entry_path(cache, item_path)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


# -- workers -----------------------------------------------------------------------------------
# Extraction runs on the same worker backends as `emoview analyze` (realtime/workers.py locally,
# realtime/ray_backend.py with --ray): a worker returns the arrays, and this process writes the
# cache entries, so a dataset extracted by a cluster lands in this machine's cache, same layout.

TASK = "emoview.train.extract:ExtractTask"
CHUNK = {"image": 32, "video": 1}  # items per job: a 13 ms image is too small to travel alone


def extract_image(path: Path, finder) -> dict:
    image = faces.read_image(path)
    if image is None:
        return {"found": np.array(False), "points": np.zeros((478, 3), np.float32),
                "blendshapes": np.zeros(52, np.float32), "size": np.zeros(2, np.int32)}
    found = finder.find(image)
    face = found[0] if found else None
    return {
        "found": np.array(face is not None),
        "points": face.points.astype(np.float32) if face else np.zeros((478, 3), np.float32),
        "blendshapes": face.blendshapes.astype(np.float32) if face else np.zeros(52, np.float32),
        "size": np.array(image.shape[:2], np.int32),
    }


def extract_video(path: Path, model_path: str) -> dict:
    """Every frame in video mode (tracking between frames, as live does)."""
    import cv2

    from emoview.realtime.sources import open_video

    capture = open_video(path)  # one decoding thread: extraction runs a process per core
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    points, shapes, found = [], [], []
    with faces.FaceLandmarker(model_path, max_faces=1, video=True) as landmarker:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            hits = landmarker.detect(frame, int(index * 1000 / fps))
            index += 1
            found.append(bool(hits))
            points.append(hits[0].points if hits else np.zeros((478, 3), np.float32))
            shapes.append(hits[0].blendshapes if hits else np.zeros(52, np.float32))
    capture.release()
    return {
        "found": np.array(found, bool),
        "points": np.array(points, np.float32).reshape(-1, 478, 3),
        "blendshapes": np.array(shapes, np.float32).reshape(-1, 52),
        "fps": np.array(fps, np.float32),
    }


class ExtractTask:
    """Built once per worker: the still-face finder (made on the first image); a job is a chunk of items."""

    def __init__(self, setup: dict) -> None:
        self.face_model = setup["files"]["face_model"]
        self._finder = None

    def __call__(self, job: dict) -> dict:
        entries = []
        for kind, path in job["items"]:
            if kind == "video":
                entries.append((path, extract_video(Path(path), self.face_model)))
            else:
                if self._finder is None:
                    self._finder = faces.StillFaceFinder(self.face_model)
                entries.append((path, extract_image(Path(path), self._finder)))
        return {"status": "ok", "entries": entries}

    def close(self) -> None:
        if self._finder is not None:
            self._finder.close()  # MediaPipe's threads must stop before the interpreter exits
            self._finder = None


# -- driver ------------------------------------------------------------------------------------


def dataset_files(root: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every item in an image folder, a video folder, or a folder of split folders."""
    if is_video_folder(root):
        return [("video", item.path) for item in read_video_folder(root)]
    if is_image_folder(root):
        return [("image", item.path) for item in read_image_folder(root)]
    if root.is_dir():
        splits = [d for d in sorted(root.iterdir()) if d.is_dir() and (is_image_folder(d) or is_video_folder(d))]
        if splits:
            return [entry for split in splits for entry in dataset_files(split)]
    if not root.exists():
        raise InputError(f"{root} does not exist; pass a dataset folder")
    raise InputError(
        f"{root} holds no dataset (no emotion class folders such as happy/, sad/); pass a folder laid out as "
        "<root>/<class>/<image>, split folders of those, or videos with a labels.csv (file,label)"
    )


def chunks_of(todo: list[tuple[str, Path]]) -> list[list[tuple[str, Path]]]:
    chunks: list[list[tuple[str, Path]]] = []
    for kind, path in todo:
        if not chunks or chunks[-1][0][0] != kind or len(chunks[-1]) >= CHUNK[kind]:
            chunks.append([])
        chunks[-1].append((kind, path))
    return chunks


def extract(files: list[tuple[str, Path]], cache: Path, model_path: Path, workers: int = 2, pool=None) -> dict:
    """Extract every uncached item (on `pool`, or `workers` local processes); returns counts and
    the detection rate over the items extracted or cached. An item whose worker died on it
    `MAX_ATTEMPTS` times is counted in `failed` (and left uncached, so a rerun tries it again)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from emoview.realtime.workers import LocalPool

    todo = [(kind, path) for kind, path in files if not entry_path(cache, path).is_file()]
    chunks = chunks_of(todo)
    failed: list[tuple[Path, str]] = []
    start = time.time()
    if chunks:
        if pool is None:
            pool = LocalPool(TASK, {"files": {"face_model": str(model_path)}}, workers=min(workers, len(chunks)))
        columns = (TextColumn("extract"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=stderr) as progress:
            task = progress.add_task("extract", total=len(todo))

            def done(job: int, result: dict, attempts: int) -> None:
                if result["status"] == "ok":
                    for path, arrays in result["entries"]:
                        save_atomic(entry_path(cache, Path(path)), **arrays)
                else:
                    failed.extend((path, result["error"]) for _, path in chunks[job])
                progress.advance(task, len(chunks[job]))

            pool.run([{"items": [(kind, str(path)) for kind, path in chunk]} for chunk in chunks], done)
    lost = {path for path, _ in failed}
    found = 0.0
    for _, path in files:
        if path in lost:
            continue
        with np.load(entry_path(cache, path)) as data:
            found += float(np.mean(data["found"])) if data["found"].size else 0.0
    return {
        "items": len(files),
        "extracted": len(todo) - len(failed),
        "cached": len(files) - len(todo),
        "failed": len(failed),
        "errors": failed[:5],
        "seconds": round(time.time() - start, 1),
        "detection_rate": found / max(len(files) - len(failed), 1),
    }


def configure(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import add_face_model_option, positive_int

    parser.add_argument("data", nargs="+", type=Path, help="dataset folders (image class folders, split folders, or videos + labels.csv)")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="feature cache folder (default: %(default)s)")
    parser.add_argument("--workers", type=positive_int, help="worker processes, or Ray actors with --ray (default: one per core)")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="extract on Ray actors: no ADDRESS starts Ray here, 'auto' joins the running cluster; the cache "
                        "is written here, as without Ray (pip install 'emoview[ray]')")
    parser.add_argument("--limit", type=positive_int, help="only the first N items of each folder (for a quick look)")
    add_face_model_option(parser)


def run(args: argparse.Namespace) -> int:
    from emoview.realtime.face_model import resolve_face_model
    from emoview.realtime.workers import make_pool

    datasets = [(root, dataset_files(root)[: args.limit]) for root in args.data]  # bad paths fail first
    check_output_folder(args.cache, "--cache")
    model_path = resolve_face_model(args.face_model)
    pool = make_pool(TASK, {"files": {"face_model": str(model_path)}}, workers=args.workers, threads=1, ray=args.ray)
    failed = 0
    for root, files in datasets:
        stats = extract(files, args.cache, model_path, pool=pool)
        failed += stats["failed"]
        stderr.print(
            f"{root}: {stats['items']} items ({stats['extracted']} extracted in {stats['seconds']} s, "
            f"{stats['cached']} cached), faces found in {100 * stats['detection_rate']:.2f} %",
            markup=False,
        )
        for path, error in stats["errors"]:
            stderr.print(f"failed: {path}: {error}", markup=False)
    stderr.print(f"cache: {args.cache / settings_tag()}")
    if failed:
        stderr.print(f"{failed} items could not be extracted; run the same command again to retry them", markup=False)
        return 1
    return 0
