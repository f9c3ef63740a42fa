"""Batch analysis: many videos, one timeline each, an index for all, on any worker backend.

- One function per video (`VideoTask`, run inside a worker: a local process or a Ray actor), so
  every backend gives the same timelines. The worker renders the files (JSON, CSV, PNG) and hands
  back their bytes; this process writes them, each whole or not at all, the JSON last. So outputs
  need no storage shared with the workers, and a timeline JSON on disk means a finished video.
- Resumable: each timeline carries a fingerprint of what made it (emotion model bytes, its feature
  spec, face model bytes, the analysis options, this format). A rerun skips a video whose outputs
  exist with the same fingerprint; `force` redoes everything; another model redoes it.
- One bad video is one failed row (a missing path, a file that is no video, a truncated one, a
  worker that died on it too often), never the end of the batch. The index (`index.csv`,
  `index.json`) lists every input: ok, failed or skipped, and is written even after Ctrl-C.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from emoview.realtime.batch_inputs import BatchItem
from emoview.realtime.errors import InputError
from emoview.realtime.files import replacing, sha256_of, write_text

BATCH_FORMAT = 1  # bump when what a timeline holds changes: older timelines are then redone
TASK = "emoview.realtime.batch:VideoTask"
INDEX_FIELDS = (
    "path", "status", "seconds", "faces", "dominant_emotion", "processing_fps", "frames", "attempts", "peak_rss_mb",
    "timeline", "error",
)
INTERRUPTED = "not analysed: the batch was interrupted; run it again to finish"


def fingerprint(model: Path, spec_json: str, face_model: Path, options: dict) -> str:
    """What made a timeline, in 16 hex digits: equal fingerprints give equal timelines."""
    made_with = {
        "format": BATCH_FORMAT,
        "model_sha256": sha256_of(model),
        "spec": json.loads(spec_json),
        "face_model_sha256": sha256_of(face_model),
        "options": options,
    }
    return hashlib.sha256(json.dumps(made_with, sort_keys=True).encode()).hexdigest()[:16]


def output_paths(out: Path, key: str, csv_too: bool) -> dict[str, Path]:
    """A video's results under --out, at its key: day1/cam.mp4 -> OUT/day1/cam.mp4.timeline.json."""
    kinds = ("png", "csv", "json") if csv_too else ("png", "json")  # the JSON last: it marks the video done
    return {kind: out / f"{key}.timeline.{kind}" for kind in kinds}


def finished_summary(paths: dict[str, Path], expected: str) -> dict | None:
    """The summary of a video done before with the same fingerprint (all its files there), else None."""
    if not all(path.is_file() for path in paths.values()):
        return None
    try:
        data = json.loads(paths["json"].read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != expected or not data.get("summary", {}).get("complete"):
        return None
    return data["summary"]


def _test_hook(path: str) -> None:
    """Tests kill a worker on a chosen video: EMOVIEW_TEST_DIE_ON=<file name> makes the worker exit at
    once when it starts that video (every time, or only the first time if EMOVIEW_TEST_DIE_MARKER
    names a file that does not exist yet, which it then creates)."""
    name = os.environ.get("EMOVIEW_TEST_DIE_ON")
    if not name or Path(path).name != name:
        return
    marker = os.environ.get("EMOVIEW_TEST_DIE_MARKER")
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
    os._exit(3)


class VideoTask:
    """Built once per worker: the emotion model loads here, the face tracker anew per video."""

    def __init__(self, setup: dict) -> None:
        from emoview.realtime.classifier import EmotionClassifier

        self.classifier = EmotionClassifier(setup["files"]["model"], threads=setup["threads"])
        self.face_model = setup["files"]["face_model"]
        self.model_shown = setup["model_shown"]  # the path the user knows, not an actor's temporary copy
        self.options = setup["options"]
        self.fingerprint = setup["fingerprint"]
        self.csv = setup["csv"]

    def __call__(self, job: dict) -> dict:
        from emoview.realtime.video_timeline import video_timeline

        _test_hook(job["path"])
        try:
            run = video_timeline(job["path"], self.classifier, self.face_model, **self.options)
        except InputError as exc:
            return {"status": "failed", "error": str(exc)}
        summary = run.timeline.summary
        if run.truncated:
            return {"status": "failed", "error": run.truncated, "frames": summary["frames_analysed"]}
        data = run.timeline.data
        data["model"]["path"] = self.model_shown
        data["fingerprint"] = self.fingerprint
        files = {"png": _png(run.timeline, Path(job["path"]).name), "json": run.timeline.to_json().encode()}
        if self.csv:
            files["csv"] = run.timeline.to_csv().encode()
        return {"status": "ok", "summary": summary, "files": files}


def _png(timeline, title: str) -> bytes:
    from emoview.realtime.timeline_plot import timeline_figure

    buffer = io.BytesIO()
    timeline_figure(timeline.data, timeline.labels, title).savefig(buffer, format="png")
    return buffer.getvalue()


@dataclass
class Batch:
    """The videos of one batch and their rows; `run(pool)` does what is left and fills the rows."""

    items: list[BatchItem]
    out: Path
    csv: bool
    fingerprint: str
    force: bool = False
    rows: list[dict] = field(default_factory=list)
    frames_done: int = 0

    def __post_init__(self) -> None:
        self.todo: list[int] = []  # indexes of items still to analyse
        for i, item in enumerate(self.items):
            row = {name: "" for name in INDEX_FIELDS}
            row.update(path=item.shown, status="failed", error=item.problem or INTERRUPTED)
            if item.path is not None:
                paths = output_paths(self.out, item.key, self.csv)
                summary = None if self.force else finished_summary(paths, self.fingerprint)
                if summary is not None:
                    row.update(status="skipped", error="", timeline=str(paths["json"]), **_summary_fields(summary))
                else:
                    self.todo.append(i)
            self.rows.append(row)

    def jobs(self) -> list[dict]:
        return [{"path": str(self.items[i].path)} for i in self.todo]

    def run(self, pool, on_row: Callable[[dict], None] | None = None) -> None:
        """Every video still to do, on `pool`; `on_row(row)` as each finishes. Ctrl-C propagates
        once the pool has stopped: the rows of videos not done keep saying so."""

        def done(job: int, result: dict, attempts: int) -> None:
            i = self.todo[job]
            row = self.rows[i]
            row.update(attempts=attempts, peak_rss_mb=result.get("peak_rss_mb", ""), error=result.get("error", ""))
            paths = output_paths(self.out, self.items[i].key, self.csv)
            if result["status"] == "ok":
                try:
                    self._write(paths, result["files"])
                except OSError as exc:  # a full disk or a read-only folder: this video's row says so
                    result = {"status": "failed", "error": f"cannot write {paths['json'].parent} ({exc.strerror or exc}); free space or fix the folder, then run again"}
            if result["status"] == "ok":
                row.update(status="ok", timeline=str(paths["json"]), **_summary_fields(result["summary"]))
                self.frames_done += result["summary"]["frames_analysed"]
            else:
                row.update(status="failed", error=result["error"])
                self.frames_done += result.get("frames", 0)
            if on_row is not None:
                on_row(row)

        pool.run(self.jobs(), done)

    @staticmethod
    def _write(paths: dict[str, Path], files: dict[str, bytes]) -> None:
        for kind, path in paths.items():  # the JSON last
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp:
                tmp.write_bytes(files[kind])

    def counts(self) -> dict[str, int]:
        return {status: sum(row["status"] == status for row in self.rows) for status in ("ok", "failed", "skipped")}

    def write_index(self, seconds: float, backend: str, startup_s: float | None = None) -> list[Path]:
        """index.csv and index.json under --out, each whole or not at all. `startup_s`: the backend's
        start until every worker had its models loaded (None when no video needed a worker)."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        summary = {"videos": len(self.rows), **self.counts(), "fingerprint": self.fingerprint, "backend": backend,
                   "seconds": round(seconds, 2), "frames": self.frames_done,
                   "startup_s": None if startup_s is None else round(startup_s, 2), "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        return [
            write_text(self.out / "index.csv", text.getvalue()),
            write_text(self.out / "index.json", json.dumps({**summary, "rows": self.rows}, indent=1) + "\n"),
        ]


def _summary_fields(summary: dict) -> dict:
    return {
        "seconds": summary["seconds"],
        "faces": summary["faces"],
        "dominant_emotion": summary["dominant_emotion"] or "",
        "processing_fps": summary["processing_fps"],
        "frames": summary["frames_analysed"],
    }
