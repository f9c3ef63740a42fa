"""`emoview predict PATH...` and `emoview eval DIR`: the emotion model on still images.

Each image is a one-frame window (T=1): the face is found exactly as training extraction finds it
(`StillFaceFinder`, which frames tiny FER2013/CK+ crops), turned into features by the model's own
spec, and all faces are classified in a few batched ONNX Runtime calls. Face finding dominates the
time (about 15 ms per image); the model itself is a fraction of a millisecond per batch row.
ONNX Runtime only: this module must not import torch or the training package.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from emoview.realtime.console import stderr
from emoview.realtime.errors import InputError
from emoview.realtime.files import write_text
from emoview.realtime.labels import canonical

PHOTO_FACES = 5  # MediaPipe misses faces in group photos when asked for only one; the largest is used
BATCH = 256  # rows per ONNX Runtime call: big enough to amortise the call, small enough for memory
NO_FACE = "no face"

@dataclass
class ImageResult:
    path: str  # as found: the argument, or the folder argument joined with the relative path
    face: bool
    probabilities: np.ndarray | None  # (classes,) or None when no face was found


# -- finding and classifying --------------------------------------------------------------------


def image_files(folder: Path) -> list[Path]:
    """Every non-hidden file under `folder`, recursively, in a stable order (by path components)."""
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def gather_paths(arguments: list[str]) -> list[Path]:
    """The files named and the files inside the folders named; a missing path is the user's error."""
    files: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files.extend(image_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{argument} does not exist; pass image files or folders of images")
    return files


def classify_files(files: list[Path], finder, classifier, label: str = "faces") -> tuple[list[ImageResult], list[Path]]:
    """Find one face per image, then classify all found faces in batches.

    Returns a result per readable image (in input order) and the unreadable files, which are
    skipped: a folder with a stray text file or a truncated download is still worth scoring.
    """
    from emoview.realtime.faces import read_image

    spec = classifier.spec
    results: list[ImageResult] = []
    unreadable: list[Path] = []
    rows: list[np.ndarray] = []
    crops: list[np.ndarray] = []  # fused models also look at the face
    owners: list[int] = []
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task(label, total=len(files))
        for path in files:
            progress.advance(task)
            image = read_image(path)
            if image is None:
                unreadable.append(path)
                continue
            faces = finder.find(image)
            if faces:
                face = max(faces, key=box_area)  # one answer per image: the most prominent face
                rows.append(spec.frame_features(spec.select_points(face.points), face.blendshapes))
                if spec.appearance:
                    crops.append(spec.face_crop(image, face.points))
                owners.append(len(results))
            results.append(ImageResult(str(path), bool(faces), None))
    if rows:
        windows = np.stack(rows)[:, None, :]  # (N, T=1, F)
        faces = np.stack(crops) if crops else None
        probs = np.concatenate([
            classifier.predict(windows[i : i + BATCH], None if faces is None else faces[i : i + BATCH])
            for i in range(0, len(windows), BATCH)
        ])
        for owner, p in zip(owners, probs):
            results[owner].probabilities = p
    return results, unreadable


def box_area(face) -> int:
    x0, y0, x1, y1 = face.box
    return (x1 - x0) * (y1 - y0)


def open_classifier(args: argparse.Namespace):
    """Loaded first, so a bad --model fails before the slower face model loads."""
    from emoview.realtime.classifier import EmotionClassifier

    return EmotionClassifier(args.model, threads=args.threads)


def open_finder(args: argparse.Namespace):
    from emoview.realtime.face_model import resolve_face_model
    from emoview.realtime.faces import StillFaceFinder

    return StillFaceFinder(resolve_face_model(args.face_model), max_faces=PHOTO_FACES)


def model_info(metadata: dict[str, str]) -> dict[str, object]:
    """The model's metadata with values that are JSON decoded (the spec, metrics, summaries)."""
    info: dict[str, object] = {}
    for key, value in sorted(metadata.items()):
        try:
            info[key] = json.loads(value)
        except (TypeError, ValueError):
            info[key] = value
    return info


def warn_unreadable(unreadable: list[Path]) -> None:
    if unreadable:
        example = unreadable[0]
        stderr.print(f"warning: skipped {len(unreadable)} unreadable file(s) (not images), e.g. {example}", markup=False, soft_wrap=True)


def stdout_console() -> Console:
    """Results on stdout; when piped, wide enough that tables keep whole class names."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def write_json(payload: dict, target: str) -> None:
    text = json.dumps(payload, indent=1)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    try:
        write_text(target, text + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {target} ({exc.strerror or exc}); choose a writable --json path") from None
    stderr.print(f"wrote {target}", markup=False)


def _common_options(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import add_model_options, positive_int

    parser.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-' for stdout)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="ONNX Runtime threads (default: 1)")
    add_model_options(parser)


# -- predict -------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders of images (searched recursively)")
    _common_options(parser)
    parser.epilog = "examples:\n  emoview predict photo.jpg\n  emoview predict faces/ --json faces.json"


def run(args: argparse.Namespace) -> int:
    files = gather_paths(args.paths)
    classifier = open_classifier(args)
    with open_finder(args) as finder:
        results, unreadable = classify_files(files, finder, classifier)
    warn_unreadable(unreadable)
    if not results:
        raise InputError(f"no readable images in {' '.join(args.paths)}; pass image files or folders of images")
    labels = classifier.labels
    if args.json:
        items = [
            {
                "path": r.path,
                "face": r.face,
                "label": labels[int(np.argmax(r.probabilities))] if r.face else None,
                "probabilities": {name: float(p) for name, p in zip(labels, r.probabilities)} if r.face else None,
            }
            for r in results
        ]
        write_json({"model": model_info(classifier.metadata), "items": items}, args.json)
    if args.json != "-":
        if not args.json:
            print_predictions(results, labels)
        found = sum(r.face for r in results)
        stderr.print(f"{len(results)} image(s), a face in {found}, {len(unreadable)} unreadable skipped", markup=False)
    return 0


def print_predictions(results: list[ImageResult], labels: tuple[str, ...]) -> None:
    table = Table("image", "label", "p", "runner-up", title="emotion per image")
    for r in results:
        if r.probabilities is None:
            table.add_row(r.path, f"[dim]{NO_FACE}[/]", "", "")
            continue
        first, second = np.argsort(r.probabilities)[::-1][:2]
        table.add_row(
            r.path,
            labels[first],
            f"{r.probabilities[first]:.2f}",
            f"{labels[second]} {r.probabilities[second]:.2f}",
        )
    stdout_console().print(table)


# -- eval ----------------------------------------------------------------------------------------


@dataclass
class Scores:
    """Accuracy over every image (no face = wrong); per-class and macro scores over classes present."""

    classes: list[str]  # the model's classes that DIR has images of
    labels: tuple[str, ...]  # all of the model's classes: the confusion matrix columns (+ no face)
    confusion: np.ndarray  # (len(labels), len(labels) + 1): true label x predicted (last: no face)
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]


def configure_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DIR", help="image folder laid out as DIR/<class>/<image>")
    parser.add_argument(
        "--subjects",
        metavar="S005,S035,...",
        help="only images of these people: file names starting with SUBJECT_ (CK+), e.g. a run's held-out subjects",
    )
    parser.add_argument(
        "--labels",
        choices=("folder", "ferplus"),
        default="folder",
        help="the truth: the class folders (default), or the FER+ plurality vote from labels.csv in DIR or its "
        "parent (images whose top vote is a tie, contempt, unknown or not-a-face are left out and counted)",
    )
    _common_options(parser)
    parser.epilog = (
        "examples:\n  emoview eval ../shared/data/fer2013/val --json val.json\n"
        "  emoview eval ../shared/data/ckplus48 --subjects S005,S035,S037\n"
        "  emoview eval ../shared/data/fer2013/val --labels ferplus"
    )


def class_folders(root: Path, labels: tuple[str, ...]) -> tuple[list[tuple[Path, int]], dict[str, str]]:
    """Class folders matched to the model's labels (case-insensitive, synonyms), and those skipped."""
    index = {canonical(name) or name.strip().lower(): i for i, name in enumerate(labels)}
    matched, skipped = [], {}
    for folder in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        label = index.get(canonical(folder.name) or folder.name.strip().lower())
        if label is None:
            skipped[folder.name] = f"not a class of this model ({', '.join(labels)})"
        else:
            matched.append((folder, label))
    if not matched:
        found = ", ".join(sorted(skipped)) or "none"
        raise InputError(
            f"{root} has no class folders this model knows (its classes: {', '.join(labels)}; folders: {found}); "
            "pass an image folder laid out as DIR/<class>/<image>"
        )
    return matched, skipped


def score(truth: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> Scores:
    """`predicted` holds class indices, or -1 where no face was found (always wrong)."""
    k = len(labels)
    confusion = np.zeros((k, k + 1), dtype=np.int64)
    np.add.at(confusion, (truth, np.where(predicted < 0, k, predicted)), 1)
    present = [c for c in range(k) if confusion[c].sum() > 0]
    per_class = {}
    for c in present:
        tp = confusion[c, c]
        called = confusion[:, c].sum()
        support = confusion[c].sum()
        precision = tp / called if called else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[labels[c]] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)}
    return Scores(
        classes=[labels[c] for c in present],
        labels=labels,
        confusion=confusion,
        accuracy=float(np.trace(confusion[:, :k]) / confusion.sum()),
        macro_f1=float(np.mean([per_class[labels[c]]["f1"] for c in present])),
        per_class=per_class,
    )


def run_eval(args: argparse.Namespace) -> int:
    root = Path(args.dataset)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise InputError(f"{root} {what}; pass an image folder laid out as DIR/<class>/<image>")
    classifier = open_classifier(args)
    folders, skipped = class_folders(root, classifier.labels)
    files, truth_of = [], {}
    for folder, label in folders:
        for path in image_files(folder):
            files.append(path)
            truth_of[str(path)] = label
    if not files:
        raise InputError(f"the class folders of {root} hold no files; pass an image folder laid out as DIR/<class>/<image>")
    folder_truth, left_out = dict(truth_of), {}
    if args.labels == "ferplus":
        files, truth_of, left_out = ferplus_truth(root, files, classifier.labels)
    subjects = tuple(f"{s.strip()}_" for s in (args.subjects or "").split(",") if s.strip())
    if subjects:
        files = [path for path in files if path.name.startswith(subjects)]
        if not files:
            raise InputError(f"no images in {root} of subjects {args.subjects}; file names must start with SUBJECT_, e.g. S005_001_00000011.png")
    with open_finder(args) as finder:
        results, unreadable = classify_files(files, finder, classifier, label="eval")
    warn_unreadable(unreadable)
    if not results:
        raise InputError(f"no readable images in {root}; pass an image folder laid out as DIR/<class>/<image>")
    for name, reason in skipped.items():
        count = sum(path.name.startswith(subjects or "") for path in image_files(root / name))
        stderr.print(f"skipped folder {name}/ ({count} files): {reason}", markup=False, soft_wrap=True)
    truth = np.array([truth_of[r.path] for r in results])
    predicted = np.array([int(np.argmax(r.probabilities)) if r.face else -1 for r in results])
    scores = score(truth, predicted, classifier.labels)
    found = sum(r.face for r in results)
    folder_scores = None
    if args.labels == "ferplus":  # the same predictions against FER2013's own labels, for comparison with other tools
        folder_scores = score(np.array([folder_truth[r.path] for r in results]), predicted, classifier.labels)
    if args.json != "-":
        print_scores(scores, root, len(results), found)
        if folder_scores is not None:
            stdout_console().print(f"same images against the class folders' labels: accuracy {folder_scores.accuracy:.4f}, "
                                   f"macro-F1 {folder_scores.macro_f1:.4f}")
    if args.json:
        payload = eval_payload(classifier, scores, root, results, predicted, truth, skipped, unreadable)
        payload["labels"] = args.labels
        if folder_scores is not None:
            payload["left_out"] = left_out
            payload["folder_labels"] = {"accuracy": folder_scores.accuracy, "macro_f1": folder_scores.macro_f1}
        write_json(payload, args.json)
    return 0


def ferplus_truth(root: Path, files: list[Path], labels: tuple[str, ...]) -> tuple[list[Path], dict[str, int], dict[str, int]]:
    """The images with a usable FER+ plurality label, and those labels; says what was left out and why."""
    from collections import Counter

    from emoview.realtime.ferplus import left_out_reason, plurality, read_ferplus

    csv = next((c for c in (root / "labels.csv", root.parent / "labels.csv") if c.is_file()), None)
    if csv is None:
        raise InputError(f"--labels ferplus needs the FER+ votes in {root / 'labels.csv'} or {root.parent / 'labels.csv'}")
    rows = read_ferplus(csv)
    kept, truth, left_out = [], {}, Counter()
    index = {name: i for i, name in enumerate(labels)}
    for path in files:
        row = rows.get(path.resolve())
        if row is None:
            left_out["not in labels.csv"] += 1
            continue
        name = plurality(row.votes)
        if name is None or name not in index:
            left_out[left_out_reason(row.votes) if name is None else f"{name} (not a class of this model)"] += 1
            continue
        kept.append(path)
        truth[str(path)] = index[name]
    if not kept:
        raise InputError(f"no image in {root} has a FER+ plurality label of this model's classes")
    detail = ", ".join(f"{reason} {n}" for reason, n in sorted(left_out.items(), key=lambda kv: (-kv[1], kv[0])))
    stderr.print(f"FER+ plurality labels from {csv}: {len(kept)} images scored, {sum(left_out.values())} left out"
                 + (f" ({detail})" if detail else ""), markup=False)
    return kept, truth, dict(left_out)


def eval_payload(classifier, scores: Scores, root, results, predicted, truth, skipped, unreadable) -> dict:
    labels = classifier.labels
    return {
        "model": model_info(classifier.metadata),
        "dataset": str(root),
        "images": len(results),
        "faces_found": int(sum(r.face for r in results)),
        "unreadable": len(unreadable),
        "skipped_folders": skipped,
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "per_class": scores.per_class,
        "confusion": {
            "rows": list(labels),
            "columns": [*labels, NO_FACE],
            "matrix": scores.confusion.tolist(),
        },
        "items": [
            {"path": r.path, "true": labels[t], "face": r.face, "label": labels[p] if p >= 0 else None}
            for r, t, p in zip(results, truth, predicted)
        ],
    }


def print_scores(scores: Scores, root: Path, images: int, found: int) -> None:
    console = stdout_console()
    console.print(f"{root}: {images} images, a face in {found} ({found / images:.1%}); no face counts as wrong", markup=False)
    console.print(f"accuracy  {scores.accuracy:.4f}")
    console.print(f"macro-F1  {scores.macro_f1:.4f}  (over {len(scores.classes)} classes present)")
    table = Table("class", "precision", "recall", "F1", "images", title="per class")
    for name in scores.classes:
        s = scores.per_class[name]
        table.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
    console.print(table)
    k = len(scores.labels)
    matrix = Table("true", *scores.labels, NO_FACE, title="confusion matrix (rows: true class)")
    for c, name in enumerate(scores.labels):
        row = scores.confusion[c]
        if row.sum() == 0:
            continue
        cells = [f"[bold]{n}[/]" if j == c else (str(n) if n else "[dim]0[/]") for j, n in enumerate(row[:k])]
        matrix.add_row(name, *cells, str(row[k]) if row[k] else "[dim]0[/]")
    console.print(matrix)
