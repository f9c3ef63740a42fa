"""Reader for AFEW-VA clips (`<clip>/<clip>.json`) and seed A's valence/arousal -> emotion labeling.

Each clip's JSON holds, per frame, `valence` and `arousal` (-10..10) and 68 `landmarks` (x, y
pixels). AFEW-VA has no emotion categories; seed A made five with K-Means on (valence, arousal) and
named the clusters by where their centroids lie. We do the same, deterministically: K-Means starts
from fixed anchors (one per name, n_init=1), and names are then given from the fitted centroids by
fixed rules (Neutral nearest the origin, Happy most positive, Sad calmest, then Anger the more
negative and Shock the other). The fitted centroids are saved with the dataset (`VAClusters.save`)
so windows are always labelled the same way. A window's label is the cluster nearest its mean
(valence, arousal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoview.realtime.errors import InputError

NAMES = ("Anger", "Happy", "Shock", "Neutral", "Sad")
# starting centroids in (valence, arousal); they only seed K-Means and name its clusters
ANCHORS = {"Anger": (-5.0, 5.0), "Happy": (5.0, 3.0), "Shock": (1.0, 6.0), "Neutral": (0.0, 0.0), "Sad": (-4.0, -3.0)}


@dataclass(frozen=True)
class AfewClip:
    clip: str
    actor: str | None
    frames: tuple[str, ...]
    valence: np.ndarray  # (N,)
    arousal: np.ndarray  # (N,)
    points: np.ndarray  # (N, 68, 2) pixels


def read_afewva_clip(folder: str | Path) -> AfewClip:
    folder = Path(folder)
    path = folder / f"{folder.name}.json"
    if not path.is_file():
        raise InputError(f"{folder} has no {path.name}; an AFEW-VA clip folder holds <clip>/<clip>.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    keys = tuple(sorted(data["frames"]))
    frames = [data["frames"][k] for k in keys]
    points = np.array([f["landmarks"] for f in frames], dtype=np.float32)
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise InputError(f"{path}: expected 68 (x, y) landmarks per frame, got {points.shape[1:]}")
    return AfewClip(
        clip=str(data.get("video_id", folder.name)),
        actor=data.get("actor"),
        frames=keys,
        valence=np.array([f["valence"] for f in frames], dtype=np.float32),
        arousal=np.array([f["arousal"] for f in frames], dtype=np.float32),
        points=points,
    )


def read_afewva(root: str | Path) -> list[AfewClip]:
    """One clip folder, or a folder of clip folders."""
    root = Path(root)
    if (root / f"{root.name}.json").is_file():
        return [read_afewva_clip(root)]
    clips = sorted(d for d in root.iterdir() if (d / f"{d.name}.json").is_file()) if root.is_dir() else []
    if not clips:
        raise InputError(f"{root} holds no AFEW-VA clips (<clip>/<clip>.json)")
    return [read_afewva_clip(d) for d in clips]


@dataclass(frozen=True)
class VAClusters:
    names: tuple[str, ...]
    centroids: np.ndarray  # (5, 2) valence, arousal

    def label(self, valence: float, arousal: float) -> str:
        distance = np.linalg.norm(self.centroids - np.array([valence, arousal]), axis=1)
        return self.names[int(np.argmin(distance))]

    def to_dict(self) -> dict:
        return {"names": list(self.names), "centroids": self.centroids.round(4).tolist()}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "VAClusters":
        data = json.loads(Path(path).read_text())
        return cls(tuple(data["names"]), np.array(data["centroids"], dtype=np.float64))


def name_centroids(centroids: np.ndarray) -> tuple[str, ...]:
    """Names for five (valence, arousal) centroids, by the rules in the module docstring."""
    left = list(range(len(centroids)))
    names = [""] * len(centroids)

    def take(index: int, name: str) -> None:
        names[index] = name
        left.remove(index)

    take(min(left, key=lambda i: np.linalg.norm(centroids[i])), "Neutral")
    take(max(left, key=lambda i: centroids[i][0]), "Happy")
    take(min(left, key=lambda i: centroids[i][1]), "Sad")
    take(min(left, key=lambda i: centroids[i][0]), "Anger")
    take(left[0], "Shock")
    return tuple(names)


def fit_clusters(clips: list[AfewClip]) -> VAClusters:
    """K-Means (k=5) on every annotated frame's (valence, arousal), seeded at the anchors.

    With fewer than five distinct points (a single test clip) there is nothing to cluster and the
    anchors themselves are the centroids.
    """
    from sklearn.cluster import KMeans

    va = np.concatenate([np.stack([c.valence, c.arousal], axis=1) for c in clips]).astype(np.float64)
    anchors = np.array([ANCHORS[n] for n in NAMES])
    if len(np.unique(va, axis=0)) < len(NAMES):
        return VAClusters(NAMES, anchors)
    km = KMeans(n_clusters=len(NAMES), init=anchors, n_init=1, random_state=0).fit(va)
    return VAClusters(name_centroids(km.cluster_centers_), km.cluster_centers_)
