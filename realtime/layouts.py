"""Landmark layouts: which points a model sees, and where its eyes and nose are.

Two layouts exist because our data comes in two shapes. Images and videos go through MediaPipe and
give the full 478-point mesh; RAVDESS and AFEW-VA ship only the iBUG-68 points (OpenFace, dlib).
`IBUG68_FROM_MP478` picks, for each iBUG-68 point, the MediaPipe mesh vertex at the same anatomical
spot, so a model trained on 68-point data runs live on MediaPipe input.
"""

from __future__ import annotations

from dataclasses import dataclass

# iBUG-68 point k is MediaPipe vertex IBUG68_FROM_MP478[k]. Groups follow the iBUG numbering:
# jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nostrils 31-35, right eye 36-41,
# left eye 42-47, outer lip 48-59, inner lip 60-67 ("right" is the subject's right: image left).
IBUG68_FROM_MP478: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107,
    336, 296, 334, 293, 301,
    168, 197, 5, 4,
    75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)

# iBUG-68 is symmetric by construction: point k mirrors to IBUG68_MIRROR[k].
IBUG68_MIRROR: tuple[int, ...] = (
    tuple(range(16, -1, -1))  # jaw
    + tuple(range(26, 16, -1))  # brows swap
    + (27, 28, 29, 30)  # nose bridge is on the midline
    + (35, 34, 33, 32, 31)  # nostrils
    + (45, 44, 43, 42, 47, 46)  # right eye -> left eye
    + (39, 38, 37, 36, 41, 40)  # left eye -> right eye
    + (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55)  # outer lip
    + (64, 63, 62, 61, 60, 67, 66, 65)  # inner lip
)


@dataclass(frozen=True)
class Layout:
    """A set of landmark points and the anchors that normalization needs, in layout-local indices."""

    name: str
    size: int
    right_eye: tuple[int, ...]  # corners of the subject's right eye (image left); lids blink, corners don't
    left_eye: tuple[int, ...]
    nose_base: int  # a rigid point below the eyes on the midline: fixes "down" for 3D alignment
    mp478_indices: tuple[int, ...] | None  # how to cut this layout out of a MediaPipe mesh


MP478 = Layout(
    name="mp478",
    size=478,
    right_eye=(33, 133),
    left_eye=(263, 362),
    nose_base=2,
    mp478_indices=None,
)

IBUG68 = Layout(
    name="ibug68",
    size=68,
    right_eye=(36, 39),
    left_eye=(42, 45),
    nose_base=33,
    mp478_indices=IBUG68_FROM_MP478,
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (MP478, IBUG68)}
