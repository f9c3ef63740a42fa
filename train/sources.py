"""Load one recipe source (images, labelled videos, RAVDESS CSVs, AFEW-VA clips) as a Still/SequenceSet.

Labels go through one funnel: the reader's name -> `train.labels.canonical` (images, videos,
RAVDESS) -> the source's `rename` -> `drop` -> kept only if the recipe's label list has it. Items
of other classes are counted in the summary, not silently mixed in.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from emoview.realtime.errors import InputError
from emoview.train import augment
from emoview.train.config import Recipe, Source, spec_of
from emoview.train.data import SequenceSet, StillSet
from emoview.train.features import batch_features


def load_source(source: Source, path: Path, labels: list[str], recipe: Recipe, cache: Path, face_model, limit, artifacts):
    loader = {"images": _images, "videos": _videos, "ravdess": _ravdess, "afewva": _afewva}.get(source.kind)
    if loader is None:
        raise InputError(f"source {source.name}: kind must be images, videos, ravdess or afewva, not {source.kind!r}")
    return loader(source, path, labels, recipe, cache, face_model, limit, artifacts)


def _label(source: Source, name: str | None, labels: list[str]) -> str | None:
    if name is None:
        return None
    name = source.rename.get(name, name)
    return name if name in labels and name not in source.drop else None


def _spread(items: list, limit: int | None) -> list:
    """At most `limit` items, evenly spread over the sorted list (so every class is represented)."""
    if not limit or len(items) <= limit:
        return items
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]


def _onehot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[y]


def cached_arrays(paths: list[Path], cache: Path, face_model, kind: str) -> list[dict]:
    """Cache entries for `paths`, extracting what is missing first (`emoview extract` does the same)."""
    from emoview.train.extract import entry_path, extract, load_entry

    missing = [p for p in paths if not entry_path(cache, p).is_file()]
    if missing:
        from emoview.realtime.console import stderr
        from emoview.realtime.face_model import resolve_face_model

        stderr.print(f"extracting {len(missing)} of {len(paths)} items not in the cache {cache}")
        extract([(kind, p) for p in missing], cache, resolve_face_model(face_model))
    return [load_entry(cache, p) for p in paths]


def still_pack(paths: list[Path], cache: Path, face_model) -> dict:
    """Points, blendshapes and found flags of many stills, packed once into one file for speed."""
    from emoview.train.extract import save_atomic, settings_tag

    key = hashlib.sha1("\n".join(str(p.resolve()) for p in paths).encode()).hexdigest()[:16]
    pack = Path(cache) / settings_tag() / "packs" / f"{key}.npz"
    if pack.is_file():
        with np.load(pack) as data:
            return {k: data[k] for k in data.files}
    entries = cached_arrays(paths, cache, face_model, "image")
    arrays = {
        "points": np.stack([e["points"] for e in entries]).astype(np.float32),
        "blendshapes": np.stack([e["blendshapes"] for e in entries]).astype(np.float32),
        "found": np.array([bool(e["found"]) for e in entries]),
    }
    save_atomic(pack, **arrays)
    return arrays


LABEL_MODES = ("folder", "ferplus", "blend", "votes", "plurality")


def _images(source, path, labels, recipe, cache, face_model, limit, artifacts):
    from emoview.realtime.ferplus import plurality, vote_distribution
    from emoview.train.read_images import read_image_folder

    if source.labels not in LABEL_MODES:
        raise InputError(f"source {source.name}: labels must be one of {', '.join(LABEL_MODES)}, not {source.labels!r}")
    items = _spread(read_image_folder(path), limit)
    votes = _ferplus_rows(source, path) if source.labels != "folder" else {}
    keep, names, targets, ignored = [], [], [], Counter()
    for i, item in enumerate(items):
        name = _label(source, item.label, labels)
        target = None
        if name is not None and source.labels != "folder":
            row = votes.get(item.path.resolve())
            if source.labels == "ferplus":
                name = _label(source, row.label if row else None, labels)
            elif source.labels in ("votes", "plurality"):
                name = _label(source, plurality(row.votes) if row else None, labels)
                if source.labels == "votes" and row is not None:
                    target = vote_distribution(row.votes, labels)
                    if target is None:  # mostly not a readable face: left out of training
                        name = None
                    elif name is None:  # a tie at the top: still a good soft target
                        name = labels[int(np.argmax(target))]
            elif row is not None:
                target = _blend(row, name, labels)
        if name is None:
            ignored[item.folder] += 1
            continue
        keep.append(i)
        names.append(name)
        targets.append(target)
    if not keep:
        raise InputError(f"source {source.name}: {path} has no images of the classes {labels}")
    arrays = still_pack([items[i].path for i in keep], cache, face_model)
    found = arrays["found"]
    y = np.array([labels.index(n) for n in names])
    target = np.stack([t if t is not None else _onehot(yy, len(labels)) for t, yy in zip(targets, y)])
    subjects = [items[i].subject for i in keep]
    missed = [(names[j], subjects[j]) for j in np.flatnonzero(~found)]
    spec = spec_of(recipe)
    crops = None
    if spec.crop:
        crops = still_crops([items[i].path for i, f in zip(keep, found) if f], arrays["points"][found], spec)
    ds = StillSet(
        source.name, arrays["points"][found], "mp478", arrays["blendshapes"][found], y[found],
        target[found].astype(np.float32), np.ones(int(found.sum()), np.float32),
        [s for s, f in zip(subjects, found) if f], missed, crops,
    )
    info = {
        "path": str(path), "kind": "images", "role": source.role, "labels": source.labels,
        "items": len(keep), "faces_found": int(found.sum()), "detection_rate": round(float(found.mean()), 4),
        "ignored": dict(ignored), "subjects": len({s for s in subjects if s}) or None,
    }
    return ds, info


def still_crops(paths: list[Path], points: np.ndarray, spec) -> np.ndarray:
    """(N, crop, crop) uint8 aligned face crops of stills, cut by the runtime's own `align_crop` from
    each image with the landmarks extraction found in it (the same points the features use)."""
    from emoview.realtime.crop import align_crop
    from emoview.realtime.faces import read_image
    from emoview.train.data import select

    pts = select(points, "mp478", spec)
    out = np.zeros((len(paths), spec.crop, spec.crop), np.uint8)
    for i, path in enumerate(paths):
        out[i] = align_crop(read_image(path), pts[i], spec.layout_def, spec.crop)
    return out


def _ferplus_rows(source: Source, path: Path) -> dict:
    from emoview.realtime.ferplus import read_ferplus

    for candidate in (path / "labels.csv", path.parent / "labels.csv"):
        if candidate.is_file():
            return read_ferplus(candidate)
    raise InputError(f"source {source.name}: labels = {source.labels!r} needs FER+ labels.csv in {path} or its parent")


def _blend(row, name: str, labels: list[str]) -> np.ndarray:
    """Half the folder label, half the FER+ annotators' vote distribution over the recipe's classes."""
    from emoview.realtime.ferplus import VOTE_LABELS

    votes = np.zeros(len(labels), np.float32)
    for count, vote in zip(row.votes, VOTE_LABELS):
        if vote in labels:
            votes[labels.index(vote)] += count
    target = _onehot(np.array(labels.index(name)), len(labels))
    return target if votes.sum() == 0 else 0.5 * target + 0.5 * votes / votes.sum()


def _sequences(source, tracks, labels, recipe, native):
    """SequenceSet from (points (n, P, D), blendshapes (n, 52) or None, label or per-window labeller, subject)."""
    spec = spec_of(recipe)
    stride = recipe.train.stride
    features, mirrored, spans, names, subjects = [], [], [], [], []
    from emoview.train.data import select

    for points, shapes, label, subject in tracks:
        if len(points) == 0:
            continue
        if spec.blendshapes and shapes is None:
            raise InputError(f"source {source.name}: {native} landmarks come without blendshapes; set blendshapes = false")
        t = len(features)
        flipped = None if shapes is None else augment.mirror_blendshapes(shapes)
        features.append(batch_features(spec, select(points, native, spec), shapes))
        mirrored.append(batch_features(spec, select(augment.mirror_points(points, native), native, spec), flipped))
        for start, stop in augment.sliding_windows(len(points), spec.window, stride):
            name = label(start, stop) if callable(label) else label
            if name is not None:
                spans.append((t, start, stop))
                names.append(name)
                subjects.append(subject)
    if not spans:
        raise InputError(f"source {source.name}: no windows of the classes {labels}")
    y = np.array([labels.index(n) for n in names])
    weight = np.ones(len(y), np.float32)
    return SequenceSet(source.name, features, mirrored, spans, y, _onehot(y, len(labels)), weight, subjects)


def _ravdess(source, path, labels, recipe, cache, face_model, limit, artifacts):
    from emoview.train.read_ravdess import read_ravdess_folder

    tracks, ignored, frames = [], Counter(), 0
    for track in _spread(read_ravdess_folder(path), limit):
        name = _label(source, track.label, labels)
        if name is None:
            ignored[track.label] += 1
            continue
        frames += len(track.points)
        tracks.append((track.points[track.ok], None, name, track.subject))
    ds = _sequences(source, tracks, labels, recipe, "ibug68")
    return ds, _seq_info(source, path, "ravdess", len(tracks), frames, ds, ignored)


def _afewva(source, path, labels, recipe, cache, face_model, limit, artifacts):
    from emoview.train.read_afewva import VAClusters, fit_clusters, read_afewva

    clips = _spread(read_afewva(path), limit)
    clusters = VAClusters.load(recipe.clusters) if recipe.clusters else fit_clusters(clips)
    artifacts["va_clusters"] = clusters.to_dict()
    tracks = []
    for clip in clips:
        def label(start, stop, clip=clip):
            name = clusters.label(float(clip.valence[start:stop].mean()), float(clip.arousal[start:stop].mean()))
            return _label(source, name, labels)

        tracks.append((clip.points, None, label, clip.actor or clip.clip))
    ds = _sequences(source, tracks, labels, recipe, "ibug68")
    info = _seq_info(source, path, "afewva", len(clips), sum(len(c.points) for c in clips), ds, Counter())
    info["va_clusters"] = clusters.to_dict()
    return ds, info


def _videos(source, path, labels, recipe, cache, face_model, limit, artifacts):
    from emoview.train.read_videos import read_video_folder

    items = _spread(read_video_folder(path), limit)
    entries = cached_arrays([it.path for it in items], cache, face_model, "video")
    tracks, ignored, frames, found = [], Counter(), 0, 0
    for item, entry in zip(items, entries):
        name = _label(source, item.label, labels)
        if name is None:
            ignored[item.label] += 1
            continue
        ok = entry["found"].astype(bool)
        frames += len(ok)
        found += int(ok.sum())
        tracks.append((entry["points"][ok], entry["blendshapes"][ok], name, item.subject or item.path.name))
    ds = _sequences(source, tracks, labels, recipe, "mp478")
    info = _seq_info(source, path, "videos", len(tracks), frames, ds, ignored)
    info["detection_rate"] = round(found / max(frames, 1), 4)
    return ds, info


def _seq_info(source, path, kind, tracks, frames, ds, ignored) -> dict:
    return {
        "path": str(path), "kind": kind, "role": source.role, "tracks": tracks, "frames": frames,
        "windows": len(ds), "ignored": dict(ignored), "subjects": len(set(ds.subjects)),
    }
