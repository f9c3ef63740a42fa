"""`emoview predict PATH...` and `emoview eval DIR`: the emotion model on still images.

The work is the library's (`emoview.realtime.stills`: every face found as training extraction finds
it, each a one-frame window); this module reads arguments, shows progress and writes tables, JSON
and CSV. ONNX Runtime only: this module must not import torch or the training package.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from emoview.realtime.console import figures_table, stderr, stdout_console
from emoview.realtime.errors import InputError
from emoview.realtime.files import check_output_file, write_text
from emoview.realtime.labels import canonical
from emoview.realtime.stills import MAX_FACES, ImageResult, StillFace, classify_images, gather_paths, image_files, read_files
from emoview.realtime.weights import WEIGHTS_KEY

EVAL_FACES = 5  # MediaPipe misses faces in group photos when asked for only one; eval scores the largest
NO_FACE = "no face"


def classify_files(files: list[Path], finder, classifier, label: str = "faces") -> tuple[list[ImageResult], list[Path]]:
    """`classify_images` over files, with a progress bar on stderr."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task(label, total=len(files))
        results, unreadable = classify_images(read_files(files), finder, classifier, lambda: progress.advance(task))
    return results, [Path(name) for name in unreadable]


def open_classifier(args: argparse.Namespace):
    """Loaded first, so a bad --model fails before the slower face model loads."""
    from emoview.realtime.classifier import EmotionClassifier

    return EmotionClassifier(args.model, threads=args.threads)


def open_finder(args: argparse.Namespace, max_faces: int):
    from emoview.realtime.face_model import resolve_face_model
    from emoview.realtime.faces import StillFaceFinder

    return StillFaceFinder(resolve_face_model(args.face_model), max_faces=max_faces, min_confidence=args.min_confidence,
                           min_face=args.min_face)


def model_summary(classifier) -> dict[str, object]:
    """Which model answered: enough to tell models apart, not its whole card (400 lines of training
    metrics before the results); `emoview info --model PATH` shows the card."""
    metadata = classifier.metadata
    return {
        "path": str(classifier.path),
        "labels": list(classifier.labels),
        "window": classifier.spec.window,
        "created": metadata.get("emoview.created"),
        "emoview_version": metadata.get("emoview.version"),
        "weights_sha256": metadata.get(WEIGHTS_KEY),
    }


def warn_unreadable(unreadable: list[Path]) -> None:
    if unreadable:
        example = unreadable[0]
        stderr.print(f"warning: skipped {len(unreadable)} unreadable file(s) (not images), e.g. {example}", markup=False, soft_wrap=True)


def write_output(text: str, target: str, option: str) -> None:
    """`text` to stdout ('-') or, whole or not at all, to a file."""
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        write_text(target, text)
    except OSError as exc:
        raise InputError(f"cannot write {target} ({exc.strerror or exc}); choose a writable {option} path") from None
    stderr.print(f"wrote {target}", markup=False)


def write_json(payload: dict, target: str) -> None:
    write_output(json.dumps(payload, indent=1) + "\n", target, "--json")


def _common_options(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import add_min_confidence, add_min_face, add_model_options

    parser.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-' for stdout)")
    add_min_confidence(parser)
    add_min_face(parser)
    add_model_options(parser)


# -- predict -------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    from emoview.realtime.commands.cli import positive_int

    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders of images (searched recursively)")
    parser.add_argument("--csv", metavar="OUT", help="write one row per face as CSV to OUT ('-' for stdout)")
    parser.add_argument("--max-faces", type=positive_int, default=MAX_FACES, metavar="N", help=f"faces to find per image (default: {MAX_FACES})")
    _common_options(parser)
    parser.epilog = (
        "JSON: per image, `faces` lists every face with its box [x0, y0, x1, y1], label and probabilities; "
        "`face`, `label` and `probabilities` describe the largest face.\n"
        "examples:\n  emoview predict photo.jpg\n  emoview predict faces/ --json faces.json --csv faces.csv"
    )


def check_output_targets(args: argparse.Namespace) -> None:
    """--json and --csv files, refused before any work if they cannot be written ('-': stdout)."""
    for option in ("--json", "--csv"):
        target = getattr(args, option[2:], None)
        if target and target != "-":
            check_output_file(target, option, example=f"results.{option[2:]}")


def run(args: argparse.Namespace) -> int:
    if args.json == "-" and args.csv == "-":
        raise InputError("--json - and --csv - would both write to stdout; send one of them to a file")
    check_output_targets(args)
    files = gather_paths(args.paths)
    classifier = open_classifier(args)
    with open_finder(args, args.max_faces) as finder:
        results, unreadable = classify_files(files, finder, classifier)
    warn_unreadable(unreadable)
    if not results:
        raise InputError(f"no readable images in {' '.join(args.paths)}; pass image files or folders of images")
    labels = classifier.labels
    if args.json:
        items = [image_item(r, labels) for r in results]
        write_json({"model": model_summary(classifier), "items": items}, args.json)
    if args.csv:
        write_output(faces_csv(results, labels), args.csv, "--csv")
    if "-" not in (args.json, args.csv):
        if not (args.json or args.csv):
            print_predictions(results, labels)
        found = sum(r.face for r in results)
        faces = sum(len(r.faces) for r in results)
        stderr.print(f"{len(results)} image(s), {faces} face(s), a face in {found}, {len(unreadable)} unreadable skipped", markup=False)
    return 0


def probabilities_by_label(probabilities: np.ndarray | None, labels: tuple[str, ...]) -> dict | None:
    """JSON's form of one face's probabilities (None: no face); predict and eval write the same."""
    return None if probabilities is None else {name: float(p) for name, p in zip(labels, probabilities)}


def face_item(face: StillFace, labels: tuple[str, ...]) -> dict:
    return {
        "box": [int(v) for v in face.box],
        "label": labels[int(np.argmax(face.probabilities))],
        "probabilities": probabilities_by_label(face.probabilities, labels),
    }


def image_item(result: ImageResult, labels: tuple[str, ...]) -> dict:
    """One image: every face, and at the top level the largest face (what `eval` scores)."""
    largest = result.largest
    top = face_item(largest, labels) if largest is not None else {"label": None, "probabilities": None}
    return {
        "path": result.path,
        "face": largest is not None,
        "label": top["label"],
        "probabilities": top["probabilities"],
        "faces": [face_item(face, labels) for face in result.faces],
    }


def faces_csv(results: list[ImageResult], labels: tuple[str, ...]) -> str:
    """One row per face (an image without one: a row with an empty face), probabilities as p_<label>."""
    text = io.StringIO()
    fields = ["path", "face", "x0", "y0", "x1", "y1", "label", *(f"p_{name}" for name in labels)]
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for result in results:
        if not result.faces:
            writer.writerow({"path": result.path})
        for i, face in enumerate(result.faces):
            item = face_item(face, labels)
            row = {"path": result.path, "face": i, "label": item["label"]}
            row.update(zip(("x0", "y0", "x1", "y1"), item["box"]))
            row.update({f"p_{name}": round(p, 6) for name, p in item["probabilities"].items()})
            writer.writerow(row)
    return text.getvalue()


def print_predictions(results: list[ImageResult], labels: tuple[str, ...]) -> None:
    table = Table("image", "face", "label", "p", "runner-up", title="emotion per face")
    for r in results:
        if not r.faces:
            table.add_row(r.path, "", f"[dim]{NO_FACE}[/]", "", "")
        for i, face in enumerate(r.faces):
            first, second = np.argsort(face.probabilities)[::-1][:2]
            table.add_row(
                r.path if i == 0 else "",
                str(i),
                labels[first],
                f"{face.probabilities[first]:.2f}",
                f"{labels[second]} {face.probabilities[second]:.2f}",
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
    check_output_targets(args)
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
    with open_finder(args, EVAL_FACES) as finder:
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
        "model": model_summary(classifier),
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
        "items": [  # with the probabilities, so scores of another kind (or of several models) need no second run
            {"path": r.path, "true": labels[t], "face": r.face, "label": labels[p] if p >= 0 else None,
             "probabilities": probabilities_by_label(r.probabilities, labels)}
            for r, t, p in zip(results, truth, predicted)
        ],
    }


def print_scores(scores: Scores, root: Path, images: int, found: int) -> None:
    console = stdout_console()
    console.print(f"{root}: {images} images, a face in {found} ({found / images:.1%}); no face counts as wrong", markup=False)
    console.print(f"accuracy  {scores.accuracy:.4f}")
    console.print(f"macro-F1  {scores.macro_f1:.4f}  (over {len(scores.classes)} classes present)")
    table = figures_table("per class")
    for column in ("class", "precision", "recall", "F1", "images"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name in scores.classes:
        s = scores.per_class[name]
        table.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
    console.print(table)
    k = len(scores.labels)
    matrix = figures_table("confusion matrix (rows: true class)")
    for column in ("true", *scores.labels, NO_FACE):
        matrix.add_column(column, justify="left" if column == "true" else "right")
    for c, name in enumerate(scores.labels):
        row = scores.confusion[c]
        if row.sum() == 0:
            continue
        cells = [f"[bold]{n}[/]" if j == c else (str(n) if n else "[dim]0[/]") for j, n in enumerate(row[:k])]
        matrix.add_row(name, *cells, str(row[k]) if row[k] else "[dim]0[/]")
    console.print(matrix)
