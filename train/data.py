"""From a recipe's sources to training, validation and hold-out sets of feature windows.

Two kinds of set share one interface (`len`, labels `y`, soft `target`, sampling `weight`, and
`windows(indices, frames, rng, augment)` -> (B, T, F) float32):
- `StillSet`: one face per item (FER2013, CK+). Raw MediaPipe points and blendshapes come from the
  extraction cache; every batch turns them into synthetic clips (`train.augment`) and then into
  features with the runtime's spec (`train.features`). Faces MediaPipe did not find are left out
  and counted, so metrics can also be reported with them counted as wrong, like `emoview eval`.
- `SequenceSet`: real sequences (RAVDESS, AFEW-VA, labelled videos) cut into sliding windows.
Subjects never cross from training into validation or a hold-out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emoview.realtime.errors import InputError
from emoview.realtime.spec import FeatureSpec
from emoview.train import augment
from emoview.train.config import Recipe, Source
from emoview.train.features import batch_features, batch_normalize

SEQUENCE_KINDS = {"ravdess", "afewva", "videos"}


@dataclass
class Context:
    """What building a batch of windows needs besides the items."""

    spec: FeatureSpec
    motion: augment.Motion
    noise: float = 0.0
    mirror: float = 0.0
    neutral: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class StillSet:
    name: str
    points: np.ndarray  # (N, 478 or 68, D) raw points in the source's own layout
    native: str  # that layout's name
    blendshapes: np.ndarray | None  # (N, 52)
    y: np.ndarray  # (N,) class index
    target: np.ndarray  # (N, C) training target distribution
    weight: np.ndarray  # (N,) relative chance of being drawn
    subjects: list
    missed: list = field(default_factory=list)  # (label, subject) of faces not found
    crops: np.ndarray | None = None  # (N, S, S) uint8 aligned face crops (fused models)

    def __len__(self) -> int:
        return len(self.y)

    def windows(self, idx, frames: int, rng: np.random.Generator | None, ctx: Context, augment_: bool, flip=None) -> np.ndarray:
        """`flip`: which items to mirror (the caller's, so crops can be mirrored with them); by
        default drawn here with the context's mirror probability."""
        pts = self.points[idx]
        shapes = None if self.blendshapes is None else self.blendshapes[idx]
        if augment_ and flip is None and ctx.mirror > 0:
            flip = rng.random(len(idx)) < ctx.mirror
        if augment_ and flip is not None:
            pts = np.where(flip[:, None, None], augment.mirror_points(pts, self.native), pts)
            if shapes is not None:
                shapes = np.where(flip[:, None], augment.mirror_blendshapes(shapes), shapes)
        pts = select(pts, self.native, ctx.spec)
        if augment_:
            seq, seq_shapes = augment.synthetic_windows(pts, shapes, ctx.spec, frames, rng, ctx.motion, ctx.neutral)
        else:
            seq = np.repeat(pts[:, None], frames, axis=1)
            seq_shapes = None if shapes is None else np.repeat(shapes[:, None], frames, axis=1)
        b = len(idx)
        flat_shapes = None if seq_shapes is None else seq_shapes.reshape(b * frames, -1)
        x = batch_features(ctx.spec, seq.reshape((b * frames,) + seq.shape[2:]), flat_shapes)
        x = x.reshape(b, frames, -1)
        if augment_ and ctx.noise > 0:
            x = x + rng.normal(0, ctx.noise, x.shape).astype(np.float32)
        return x


@dataclass
class SequenceSet:
    name: str
    features: list  # per track (n_i, F) features
    mirrored: list  # per track (n_i, F) features of the mirrored track
    spans: list  # (track, start, stop) per window
    y: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    subjects: list
    missed: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def windows(self, idx, frames: int, rng, ctx: Context, augment_: bool, flip=None) -> np.ndarray:
        """`flip`: which windows to mirror, as for `StillSet.windows`."""
        out = []
        for n, i in enumerate(idx):
            track, start, stop = self.spans[i]
            if flip is not None:
                mirror = augment_ and bool(flip[n])
            else:
                mirror = augment_ and ctx.mirror > 0 and rng.random() < ctx.mirror
            feats = (self.mirrored if mirror else self.features)[track][start:stop]
            out.append(augment.pad_window(feats, ctx.spec.window)[-frames:])
        x = np.stack(out).astype(np.float32)
        if augment_ and ctx.noise > 0:
            x = x + rng.normal(0, ctx.noise, x.shape).astype(np.float32)
        return x


def select(points: np.ndarray, native: str, spec: FeatureSpec) -> np.ndarray:
    """Cut the spec's layout out of points in a source's native layout."""
    if native == spec.layout:
        return points
    if native == "mp478":
        return points[:, list(spec.layout_def.mp478_indices)]
    raise InputError(f"a {native} dataset cannot feed a {spec.layout} model; use layout = \"{native}\" in the recipe")


def concat(sets: list, name: str):
    """One set from several of the same kind (e.g. FER2013 train + CK+ training subjects)."""
    sets = [s for s in sets if len(s)]
    if not sets:
        raise InputError(f"no {name} data left after filtering; check the recipe's sources and labels")
    first = sets[0]
    if len(sets) == 1:
        return first
    if any(type(s) is not type(first) for s in sets):
        raise InputError("a recipe cannot mix still images with video sequences")
    missed = [m for s in sets for m in s.missed]
    cat = lambda key: np.concatenate([getattr(s, key) for s in sets])  # noqa: E731
    subjects = [x for s in sets for x in s.subjects]
    if isinstance(first, StillSet):
        if len({s.native for s in sets}) > 1:
            raise InputError("all still datasets of a recipe must come from the same landmark layout")
        shapes = None if first.blendshapes is None else cat("blendshapes")
        if len({s.crops is None for s in sets}) > 1:
            raise InputError("all still datasets of a recipe must have crops, or none")
        crops = None if first.crops is None else cat("crops")
        return StillSet(name, cat("points"), first.native, shapes, cat("y"), cat("target"), cat("weight"), subjects, missed, crops)
    features, mirrored, spans = [], [], []
    for s in sets:
        offset = len(features)
        features += s.features
        mirrored += s.mirrored
        spans += [(t + offset, a, b) for t, a, b in s.spans]
    return SequenceSet(name, features, mirrored, spans, cat("y"), cat("target"), cat("weight"), subjects, missed)


def subject_split(subjects: list, share: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out items: a deterministic share of subjects (items without one: by item)."""
    keys = [s if s is not None else f"item{i}" for i, s in enumerate(subjects)]
    unique = sorted(set(keys))
    if len(unique) < 2:
        raise InputError(f"a subject-independent split needs at least 2 subjects, found {len(unique)}")
    order = sorted(unique, key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    held = set(order[: max(1, int(round(share * len(unique))))])
    return np.array([k in held for k in keys])


def take(ds, mask: np.ndarray, name: str):
    """The items (or windows) of a set where `mask` is true, with the misses of their subjects."""
    idx = np.flatnonzero(mask)
    subjects = [ds.subjects[i] for i in idx]
    kept = set(subjects)
    missed = [m for m in ds.missed if m[1] in kept]
    if isinstance(ds, StillSet):
        shapes = None if ds.blendshapes is None else ds.blendshapes[idx]
        crops = None if ds.crops is None else ds.crops[idx]
        return StillSet(name, ds.points[idx], ds.native, shapes, ds.y[idx], ds.target[idx], ds.weight[idx], subjects, missed, crops)
    spans = [ds.spans[i] for i in idx]
    return SequenceSet(name, ds.features, ds.mirrored, spans, ds.y[idx], ds.target[idx], ds.weight[idx], subjects, missed)


@dataclass
class Splits:
    train: object
    val: object
    extra: dict  # name -> set, reported separately (hold-outs)
    summary: dict
    artifacts: dict  # name -> JSON-able object to save in the run folder (e.g. va_clusters)


def build_splits(recipe: Recipe, data_root: Path, cache: Path, face_model, limit: int | None = None) -> Splits:
    from emoview.train.sources import load_source

    labels = list(recipe.labels)
    train_parts, val_parts, extra, summary, artifacts = [], [], {}, {"sources": {}}, {}
    for source in recipe.sources:
        path = _source_path(data_root, source)
        ds, info = load_source(source, path, labels, recipe, cache, face_model, limit, artifacts)
        ds.weight = ds.weight * source.weight
        summary["sources"][source.name] = info
        if source.role == "train":
            train_parts.append(ds)
        elif source.role == "val":
            val_parts.append(ds)
        elif source.role == "split":
            held = subject_split(ds.subjects, source.holdout, recipe.train.holdout_seed)
            train_parts.append(take(ds, ~held, f"{source.name}/train"))
            extra[f"{source.name}_holdout"] = take(ds, held, f"{source.name}/holdout")
            info["holdout_subjects"] = sorted({str(s) for s, h in zip(ds.subjects, held) if h})
        else:
            raise InputError(f"source {source.name}: role must be train, val or split, not {source.role!r}")
    train = concat(train_parts, "training")
    if val_parts:
        val = concat(val_parts, "validation")
    elif extra:
        first = next(iter(extra))
        val = extra.pop(first)
    else:
        raise InputError("the recipe has no validation data: give a source role = \"val\" or \"split\"")
    _check_disjoint(train, val, extra)
    summary["train"] = _describe(train, labels)
    summary["val"] = _describe(val, labels)
    summary.update({name: _describe(ds, labels) for name, ds in extra.items()})
    return Splits(train, val, extra, summary, artifacts)


def _source_path(root: Path, source: Source) -> Path:
    """The source's folder under --data, given as the folder that holds the dataset (`data/`) or, as
    people also pass it, as the dataset folder itself (`data/ckplus48` for path "ckplus48", or
    `data/fer2013` for "fer2013/train")."""
    if Path(source.path).is_absolute():
        path = Path(source.path)
    else:
        root = Path(root)
        path = root / source.path
        first = Path(source.path).parts[0]
        if not path.exists() and root.name == first and (root.parent / source.path).exists():
            path = root.parent / source.path
    if not path.exists():
        raise InputError(
            f"source {source.name}: {path} does not exist; --data must be the folder that holds "
            f"{Path(source.path).parts[0]}/ (e.g. ../shared/data), or {Path(source.path).parts[0]}/ itself"
        )
    return path


def _check_disjoint(train, val, extra) -> None:
    known = {s for s in train.subjects if s is not None}
    for name, ds in [("val", val), *extra.items()]:
        shared = known & {s for s in ds.subjects if s is not None}
        if shared:
            raise InputError(f"subjects {sorted(shared)[:5]} are in both training and {name}; fix the sources")


def _describe(ds, labels: list[str]) -> dict:
    counts = np.bincount(ds.y, minlength=len(labels))
    subjects = {s for s in ds.subjects if s is not None}
    return {
        "items": int(len(ds)),
        "per_class": {name: int(counts[i]) for i, name in enumerate(labels)},
        "faces_not_found": len(ds.missed),
        "subjects": len(subjects) or None,
    }


def neutral_template(train: StillSet, labels: list[str], spec: FeatureSpec):
    """Mean normalized neutral face (+ blendshapes), for onsets; None if there is no neutral class."""
    if "neutral" not in labels or not isinstance(train, StillSet):
        return None
    idx = np.flatnonzero(train.y == labels.index("neutral"))[:3000]
    if len(idx) == 0:
        return None
    pts = batch_normalize(select(train.points[idx], train.native, spec), spec).mean(axis=0)
    shapes = train.blendshapes[idx].mean(axis=0) if train.blendshapes is not None else None
    return pts.astype(np.float64), shapes
