"""The feature contract between training and the runtime, carried inside every ONNX model.

Training writes a `FeatureSpec` into the model's metadata; the runtime reads it back and builds the
exact same features, so a model file is self-describing and a mismatch is impossible to miss. Any
change to how features are computed must bump `SPEC_VERSION`: an old runtime then refuses the new
model instead of feeding it subtly wrong numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from emoview.realtime.layouts import LAYOUTS, Layout

SPEC_NAME = "emoview-landmarks"
# version 1: landmarks and blendshapes; version 2 adds the aligned face crop (`crop`, `embedding`).
# A spec is written with the lowest version that describes it, so a landmark-only model made today
# still loads in an emoview that knows only version 1.
SPEC_VERSION = 2
READABLE_VERSIONS = (1, 2)
METADATA_KEY = "emoview.spec"
N_BLENDSHAPES = 52
ALIGNMENTS = ("roll", "rigid3d")


class SpecError(ValueError):
    """A model's feature spec is missing, malformed or from a version this runtime does not know."""


@dataclass(frozen=True)
class FeatureSpec:
    """How one video frame of one face becomes one feature vector, and how frames become a window.

    layout      which landmarks (`realtime.layouts`)
    dims        2 uses (x, y); 3 adds MediaPipe's depth z
    align       "roll": undo in-plane rotation from the eye line; "rigid3d": undo the full head pose
                using a frame built from the eye corners and the nose base (needs dims=3)
    blendshapes append MediaPipe's 52 blendshape scores (only the MediaPipe mesh has them)
    window      frames per classification window (the model also accepts shorter windows)
    labels      class names, in the order of the model's output
    crop        side in pixels of the aligned grey face crop the model also looks at
                (`realtime.crop`); 0 for a landmark-only model
    embedding   length of the per-frame crop embedding the model returns and gets back, for
                earlier frames, with the next window (0 without a crop)
    """

    labels: tuple[str, ...]
    layout: str = "mp478"
    dims: int = 3
    align: str = "rigid3d"
    blendshapes: bool = True
    window: int = 15
    crop: int = 0
    embedding: int = 0
    name: str = field(default=SPEC_NAME)
    version: int = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        problems = []
        if self.name != SPEC_NAME:
            problems.append(f"unknown spec name {self.name!r}")
        if self.version not in READABLE_VERSIONS:
            problems.append(f"spec version {self.version} (this emoview reads versions {', '.join(map(str, READABLE_VERSIONS))})")
        elif self.version == 1 and (self.crop or self.embedding):
            problems.append("a version 1 spec has no crop")
        if self.crop and not 16 <= self.crop <= 256:
            problems.append(f"crop must be 0 or 16..256 pixels, not {self.crop}")
        if bool(self.crop) != bool(self.embedding > 0) or self.embedding < 0:
            problems.append(f"a crop needs an embedding length and only a crop has one (crop {self.crop}, embedding {self.embedding})")
        if self.layout not in LAYOUTS:
            problems.append(f"unknown layout {self.layout!r}")
        if self.dims not in (2, 3):
            problems.append(f"dims must be 2 or 3, not {self.dims}")
        if self.align not in ALIGNMENTS:
            problems.append(f"unknown alignment {self.align!r}")
        if self.align == "rigid3d" and self.dims != 3:
            problems.append("rigid3d alignment needs dims=3")
        if self.window < 1:
            problems.append(f"window must be at least 1, not {self.window}")
        if len(self.labels) < 2:
            problems.append("a model needs at least two labels")
        if problems:
            raise SpecError("; ".join(problems))
        object.__setattr__(self, "version", 2 if self.crop else 1)

    @property
    def appearance(self) -> bool:
        """Whether the model also looks at the face crop (a fused model)."""
        return self.crop > 0

    @property
    def layout_def(self) -> Layout:
        return LAYOUTS[self.layout]

    @property
    def feature_size(self) -> int:
        return self.layout_def.size * self.dims + (N_BLENDSHAPES if self.blendshapes else 0)

    def to_json(self) -> str:
        data = asdict(self)
        if not self.crop:  # exactly what version 1 wrote
            del data["crop"], data["embedding"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FeatureSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"feature spec is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise SpecError("feature spec is not a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"feature spec has fields this emoview does not know: {sorted(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise SpecError(f"feature spec is incomplete ({exc})") from None

    # -- features -------------------------------------------------------------------------------

    def select_points(self, mesh478: np.ndarray) -> np.ndarray:
        """Cut this spec's layout out of a MediaPipe mesh (478, 3)."""
        indices = self.layout_def.mp478_indices
        return mesh478 if indices is None else mesh478[list(indices)]

    def frame_features(self, points: np.ndarray, blendshapes: np.ndarray | None = None) -> np.ndarray:
        """One feature vector from layout points in isotropic pixel units, shape (layout.size, 2|3).

        Points must share one scale on every axis (MediaPipe's normalized x*width, y*height,
        z*width), or a non-square frame would squash the face.
        """
        aligned = normalize_points(points, self.layout_def, self.dims, self.align)
        parts = [aligned.reshape(-1)]
        if self.blendshapes:
            if blendshapes is None:
                raise SpecError("this model needs blendshapes, and the face has none")
            parts.append(np.asarray(blendshapes, dtype=np.float32).reshape(N_BLENDSHAPES))
        return np.concatenate(parts).astype(np.float32, copy=False)


    def face_crop(self, image: np.ndarray, mesh478: np.ndarray) -> np.ndarray:
        """This spec's aligned grey crop (crop, crop) uint8 of a face in `image`, placed by its
        MediaPipe mesh in the image's pixels (`realtime.crop`)."""
        from emoview.realtime.crop import align_crop

        return align_crop(image, self.select_points(mesh478), self.layout_def, self.crop)


def normalize_points(points: np.ndarray, layout: Layout, dims: int, align: str) -> np.ndarray:
    """Centre on the eyes, undo rotation, and scale to unit inter-ocular distance.

    The result is invariant to where the face is in the frame, how big it is, and how it is rotated
    (in-plane for "roll"; any rigid 3D rotation for "rigid3d"), so the classifier only sees shape.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] != layout.size or p.shape[1] < dims:
        raise SpecError(f"expected {layout.size} points with {dims} coordinates, got {p.shape}")
    p = p[:, :dims]
    right = p[list(layout.right_eye)].mean(axis=0)
    left = p[list(layout.left_eye)].mean(axis=0)
    centre = (right + left) / 2.0
    eye_axis = left - right
    scale = float(np.linalg.norm(eye_axis))
    if not np.isfinite(scale) or scale < 1e-9:
        return np.zeros((layout.size, dims), dtype=np.float32)
    p = (p - centre) / scale
    if align == "roll":
        angle = np.arctan2(eye_axis[1], eye_axis[0])
        c, s = np.cos(-angle), np.sin(-angle)
        xy = p[:, :2] @ np.array([[c, s], [-s, c]])
        p = np.concatenate([xy, p[:, 2:]], axis=1)
    else:
        ex = eye_axis / scale
        down = p[layout.nose_base]  # centre is already the origin
        ey = down - ex * float(down @ ex)
        norm = float(np.linalg.norm(ey))
        if norm < 1e-9:
            return np.zeros((layout.size, dims), dtype=np.float32)
        ey /= norm
        ez = np.cross(ex, ey)
        p = p @ np.stack([ex, ey, ez], axis=1)
    return p.astype(np.float32)

