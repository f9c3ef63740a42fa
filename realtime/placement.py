"""Where each face's probability panel goes, so that no panel covers a face or another panel.

With one face, any side will do; with a crowd, a panel drawn blindly to the right of its box lands
on the next person. Each face in turn gets the first free spot for its full panel (right of its
box, left, below, above, each aligned with either end of the box's side); when none is free, a
compact panel (a label and one bar) just under or over its box; when even that collides, the spot
that covers least. Pure geometry on rectangles, so it is tested without drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1; x1 and y1 exclusive


def overlap(a: Rect, b: Rect) -> int:
    """Area shared by two rectangles (0 when they only touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def union(a: Rect, b: Rect) -> Rect:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


@dataclass(frozen=True)
class Placement:
    rect: Rect
    compact: bool  # True: the label and one bar only


def _inside(x: int, y: int, size: tuple[int, int], frame: tuple[int, int]) -> Rect | None:
    w, h = size
    if w > frame[0] or h > frame[1]:
        return None
    x = min(max(x, 0), frame[0] - w)
    y = min(max(y, 0), frame[1] - h)
    return (x, y, x + w, y + h)


def _beside(box: Rect, size: tuple[int, int], gap: int) -> list[tuple[int, int]]:
    """Top-left corners right, left, below and above `box`, each aligned with either end of its side."""
    x0, y0, x1, y1 = box
    w, h = size
    return [
        (x1 + gap, y0), (x1 + gap, y1 - h),
        (x0 - gap - w, y0), (x0 - gap - w, y1 - h),
        (x0, y1 + gap), (x1 - w, y1 + gap),
        (x0, y0 - gap - h), (x1 - w, y0 - gap - h),
    ]  # fmt: skip


def _under(box: Rect, size: tuple[int, int], gap: int) -> list[tuple[int, int]]:
    x0, y0, x1, y1 = box
    w, h = size
    centre = (x0 + x1 - w) // 2
    return [(centre, y1 + gap), (x0, y1 + gap), (x1 - w, y1 + gap), (centre, y0 - gap - h), (x0, y0 - gap - h)]


def place_panels(
    frame: tuple[int, int],
    faces: list[Rect],
    full: tuple[int, int],
    compact: tuple[int, int],
    gap: int,
) -> list[Placement]:
    """A placement per face, in the order of `faces` (each face's area: its box and name tag).

    `frame` is (width, height); `full` and `compact` are the two panel sizes. Faces are placed
    one after another; since an early panel can take the only spot a later face has, a few
    orders are tried (left to right, right to left, top down, bottom up) and the layout with the
    fewest compact panels, then the least covered area, wins.
    """
    orders = (
        lambda k: (faces[k][0], faces[k][1]),
        lambda k: (-faces[k][2], faces[k][1]),
        lambda k: (faces[k][1], faces[k][0]),
        lambda k: (-faces[k][3], faces[k][0]),
    )
    best: tuple[tuple[int, int], list[Placement]] | None = None
    for order in orders:
        layout, covered = _place_in_order(frame, faces, sorted(range(len(faces)), key=order), full, compact, gap)
        score = (sum(p.compact for p in layout), covered)
        if best is None or score < best[0]:
            best = (score, layout)
        if score == (0, 0):
            break
    return best[1] if best else []


def _place_in_order(frame, faces, order, full, compact, gap) -> tuple[list[Placement], int]:
    placements: dict[int, Placement] = {}
    total = 0
    for i in order:
        taken = faces + [p.rect for p in placements.values()]
        options = [(False, full, spot) for spot in _beside(faces[i], full, gap)]
        options += [(True, compact, spot) for spot in _under(faces[i], compact, gap)]
        best: tuple[int, Placement] | None = None
        for is_compact, size, (x, y) in options:
            rect = _inside(x, y, size, frame)
            if rect is None:
                continue
            covered = sum(overlap(rect, other) for other in taken)
            if best is None or covered < best[0]:
                best = (covered, Placement(rect, is_compact))
            if covered == 0:
                break
        if best is None:  # not even a compact panel fits in this frame
            best = (0, Placement((0, 0, 0, 0), True))
        placements[i] = best[1]
        total += best[0]
    return [placements[i] for i in range(len(faces))], total
