"""The timeline as a picture: one stacked band per face, emotions over time, gaps where it is absent.

Each second is a flat step (the timeline holds one mean per second, and drawing curves between
them would invent values between seconds). Seconds without the face are left empty over a grey
hatch, so "not in view" never looks like "neutral". Colours match the live overlay, so the
picture and the annotated video speak the same language. Matplotlib's object API with the Agg
canvas: no pyplot global state, no display needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emoview.realtime.annotate import colour_for
from emoview.realtime.files import write_with

MAX_FACES_SHOWN = 6  # the faces seen longest; the rest stay in the JSON


def rgb(label: str) -> tuple[float, float, float]:
    b, g, r = colour_for(label)
    return (r / 255.0, g / 255.0, b / 255.0)


def _probability_matrix(entries: list[dict | None], labels: tuple[str, ...]) -> np.ndarray:
    """(seconds, labels) mean probabilities, NaN for seconds without the face."""
    matrix = np.full((len(entries), len(labels)), np.nan)
    for second, entry in enumerate(entries):
        if entry is not None:
            row = np.array([entry["probabilities"][label] for label in labels])
            matrix[second] = row / row.sum() if row.sum() > 0 else row  # rounding must not leave a sliver
    return matrix


def _label_runs(entries: list[dict | None]) -> list[tuple[int, int, str]]:
    """(start, end, label) for each run of consecutive seconds with the same label."""
    runs: list[tuple[int, int, str]] = []
    for second, entry in enumerate(entries):
        if entry is None:
            continue
        if runs and runs[-1][1] == second and runs[-1][2] == entry["label"]:
            runs[-1] = (runs[-1][0], second + 1, entry["label"])
        else:
            runs.append((second, second + 1, entry["label"]))
    return runs


MINUTE_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600)  # seconds between ticks on a m:ss axis


def set_time_axis(ax, seconds: int) -> None:
    """Ticks at whole seconds only (a tick at 2.5 s would read "2 s"): up to two minutes in seconds,
    longer in m:ss at whole quarter minutes or more, about eight ticks either way."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

    if seconds <= 120:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True, steps=[1, 2, 5, 10]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{round(x)} s"))
        return
    step = next((s for s in MINUTE_STEPS if seconds / s <= 10), MINUTE_STEPS[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{round(x) // 60}:{round(x) % 60:02d}"))


def _draw_face(ax, face_id: str, entries: list[dict | None], labels: tuple[str, ...], summary: dict) -> None:
    n = len(entries)
    matrix = _probability_matrix(entries, labels)
    edges = np.repeat(np.arange(n + 1), 2)[1:-1]  # 0,1,1,2,2,...,n: each second a flat step
    steps = np.repeat(matrix, 2, axis=0)
    lower = np.zeros(len(edges))
    for i, label in enumerate(labels):
        upper = lower + steps[:, i]
        ax.fill_between(edges, lower, upper, color=rgb(label), linewidth=0, label=label)
        lower = upper
    absent = np.isnan(matrix[:, 0])
    for second in np.flatnonzero(absent):
        ax.axvspan(second, second + 1, facecolor="#f4f4f4", edgecolor="#c8c8c8", hatch="///", linewidth=0)
    # each second's label as a strip on top, named where a run is wide enough to hold its name:
    # the answer to "what was I feeling then" even when two bands are close in size
    for start, end, label in _label_runs(entries):
        ax.axvspan(start, end, ymin=1.02, ymax=1.16, color=rgb(label), clip_on=False, linewidth=0)
        if (end - start) / max(n, 1) >= 0.07:
            dark = sum(colour_for(label)) > 450
            ax.text((start + end) / 2, 1.09, label, transform=ax.get_xaxis_transform(), ha="center", va="center",
                    fontsize=7.5, color="black" if dark else "white", clip_on=False)
    share = summary["time_share"]
    dominant = summary["dominant_emotion"]
    present = summary["seconds_present"]
    title = f"face {face_id}: " + (
        f"mostly {dominant} ({share[dominant] * 100:.0f}% of its time), in view {present} of {n} s"
        if dominant
        else "never in view"
    )
    ax.set_title(title, loc="left", fontsize=10, pad=24)
    ax.set_xlim(0, max(n, 1))
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.5, 1])
    ax.set_yticklabels(["0", "50%", "100%"], fontsize=8)
    ax.margins(0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_timeline(timeline: dict, labels: tuple[str, ...], path: str | os.PathLike, title: str = "") -> Path:
    """Writes the PNG; returns its path. Works for zero faces too (says so instead of failing)."""
    figure = timeline_figure(timeline, labels, title)
    return write_with(Path(path), lambda tmp: figure.savefig(tmp, format="png"))


def timeline_figure(timeline: dict, labels: tuple[str, ...], title: str = ""):
    """The matplotlib Figure (Agg canvas) that `plot_timeline` saves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    n = timeline["seconds"]
    per_face = timeline["summary"]["per_face"]
    longest = sorted(timeline["faces"], key=lambda f: (-per_face[f]["seconds_present"], int(f)))[:MAX_FACES_SHOWN]
    shown = sorted(longest, key=int)  # in order of appearance
    # the most frequent emotions at the bottom, on the zero line, where a band is easiest to read
    share = timeline["summary"]["time_share"]
    labels = tuple(sorted(labels, key=lambda label: -share.get(label, 0.0)))
    rows = max(len(shown), 1)
    figure = Figure(figsize=(11, 1.0 + 1.9 * rows), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    if not shown:
        axes[0].text(0.5, 0.5, "no face found in this video", ha="center", va="center", transform=axes[0].transAxes, fontsize=12)
        axes[0].set_xlim(0, max(n, 1))
        axes[0].set_yticks([])
    for ax, face_id in zip(axes, shown):
        _draw_face(ax, face_id, timeline["faces"][face_id], labels, per_face[face_id])
    set_time_axis(axes[-1], n)
    axes[-1].set_xlabel("video time")
    handles = [Patch(color=rgb(label), label=label) for label in reversed(labels)]  # same order as the stack
    handles.append(Patch(facecolor="#f4f4f4", edgecolor="#c8c8c8", hatch="///", label="not in view"))
    figure.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=9)
    summary = timeline["summary"]
    hidden = len(timeline["faces"]) - len(shown)
    subtitle = f"{summary['faces']} face(s), {n} s, {summary['frames_analysed']} frames"
    if summary["dominant_emotion"]:
        top = sorted(summary["time_share"].items(), key=lambda item: -item[1])[:3]
        subtitle += "; face time: " + ", ".join(f"{label} {share * 100:.0f}%" for label, share in top if share > 0)
    if hidden > 0:
        subtitle += f"; {hidden} briefly seen face(s) not drawn (see the JSON)"
    if not summary["complete"]:
        subtitle += f"; partial: run {summary['stopped_by']}"
    figure.suptitle(f"{title}\n{subtitle}" if title else subtitle, x=0.01, ha="left", fontsize=11)
    return figure
