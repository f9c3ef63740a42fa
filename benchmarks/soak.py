"""Soak test: a sample video looped for >= 20,000 frames through the real pipeline; memory must stay flat.

    python benchmarks/soak.py                              # 20,000 frames, without then with recording
    python benchmarks/soak.py --frames 2000 --modes plain  # a quick look
    python benchmarks/soak.py --video ../shared/data/samples/face_noface.mov --modes plain  # faces come and go

The source is the real `VideoSource` (reader thread, bounded feed) re-opening its file at each end,
with timestamps that keep growing, so MediaPipe's video mode, the tracker, the ring buffers, the
smoother, the overlay and the H.264 writer thread all run exactly as in `emoview --video`, only for
longer. RSS (resident memory, from /proc) is sampled every 250 frames; "start" is taken after a
warm-up (allocator pools, ONNX Runtime and MediaPipe arenas settle in the first few hundred frames),
"middle" half-way, "end" at the last frame. Growth = end / start - 1 must be <= 5 % (--max-growth);
the least-squares slope over all samples after warm-up is reported too (KB per 1,000 frames), since
a real leak shows as a steady slope, noise does not. Tracker state (faces held, ids handed out) is
reported so that faces appearing and leaving can be seen not to pile up.

Exit code 0 when every mode stays within the limit, 1 otherwise. --json writes the numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoview.realtime.annotate import Overlay  # noqa: E402
from emoview.realtime.classifier import EmotionClassifier  # noqa: E402
from emoview.realtime.face_model import resolve_face_model  # noqa: E402
from emoview.realtime.faces import FaceLandmarker  # noqa: E402
from emoview.realtime.pipeline import Analyzer, FrameResult  # noqa: E402
from emoview.realtime.recorder import VideoSink  # noqa: E402
from emoview.realtime.session import Session  # noqa: E402
from emoview.realtime.sources import VideoSource  # noqa: E402

SAMPLES = REPO.parent / "shared" / "data" / "samples"
EVERY = 250  # frames between RSS samples


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class LoopingVideoSource(VideoSource):
    """The real VideoSource, re-opened at the end of the file until `limit` frames were read.

    Timestamps are frame index / fps, so they keep growing across loops (MediaPipe's video mode
    requires it) and a face that leaves at the end of the file and enters at the start of the next
    loop is a real appearance/disappearance for the tracker.
    """

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(path)
        self.limit = limit
        self.loops = 0

    def _read(self):
        if self.frames_read >= self.limit:
            return None
        if self._first is not None:
            image, self._first = self._first, None
        else:
            ok, image = self._capture.read()
            if not ok or image is None:
                self.loops += 1
                self._capture.release()
                self._capture = cv2.VideoCapture(str(self.path))
                ok, image = self._capture.read()
                if not ok or image is None:
                    return None
        return image, self.frames_read * 1000.0 / self.fps


def soak(video: Path, frames: int, record: bool, model: str | None, face_model: str | None, warmup: int) -> dict:
    samples: list[tuple[int, float]] = []
    tracks_max = 0

    with FaceLandmarker(resolve_face_model(face_model), max_faces=1) as landmarker, tempfile.TemporaryDirectory() as tmp:
        analyzer = Analyzer(EmotionClassifier(model), landmarker)
        source = LoopingVideoSource(video, frames)
        sink = VideoSink(Path(tmp) / "soak.mp4", source.fps) if record else None
        overlay = Overlay(analyzer.labels)

        def on_result(result: FrameResult) -> None:
            nonlocal tracks_max
            n = result.frame.index + 1
            tracks_max = max(tracks_max, len(analyzer.tracker.tracks))
            if n % EVERY == 0 or n == frames:
                if n == warmup:
                    gc.collect()
                samples.append((n, rss_mb()))

        session = Session(source, analyzer, overlay, sink, None, on_result=on_result)
        start = time.perf_counter()
        with source:
            stats = session.run()
        elapsed = time.perf_counter() - start
        recorded_mb = (Path(tmp) / "soak.mp4").stat().st_size / 1e6 if record else 0.0
        ids_handed_out = next(analyzer.tracker._ids) - 1

    after = [(n, mb) for n, mb in samples if n >= warmup]
    start_n, start_mb = after[0]
    middle_n, middle_mb = min(after, key=lambda s: abs(s[0] - frames // 2))
    end_n, end_mb = after[-1]
    xs = np.array([n for n, _ in after], float)
    ys = np.array([mb for _, mb in after], float)
    slope = float(np.polyfit(xs, ys, 1)[0]) * 1000.0 * 1024.0 if len(after) > 2 else 0.0  # KB per 1,000 frames
    return {
        "video": video.name,
        "recording": record,
        "frames": stats.frames,
        "loops": source.loops,
        "stopped_by": stats.stopped_by,
        "seconds": round(elapsed, 1),
        "fps": round(stats.frames / elapsed, 2),
        "frames_with_faces": stats.frames_with_faces,
        "recorded_frames": stats.recorded,
        "recorded_mb": round(recorded_mb, 1),
        "rss_mb": {"start": round(start_mb, 1), "middle": round(middle_mb, 1), "end": round(end_mb, 1),
                   "max": round(float(ys.max()), 1), "first_sample": round(samples[0][1], 1)},
        "rss_at_frame": {"start": start_n, "middle": middle_n, "end": end_n},
        "growth_pct": round((end_mb / start_mb - 1.0) * 100.0, 2),
        "slope_kb_per_1000_frames": round(slope, 1),
        "tracker": {"faces_held_at_end": len(analyzer.tracker.tracks), "faces_held_max": tracks_max, "ids_handed_out": ids_handed_out},
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=SAMPLES / "WolfgangLanger_Pexels.mp4")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--modes", default="plain,record", help="comma-separated: plain (no recording), record")
    parser.add_argument("--warmup", type=int, default=1000, help="frames before the 'start' RSS sample (a multiple of 250)")
    parser.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth from start to end, percent")
    parser.add_argument("--model", help="emotion model (.onnx); default: the shipped one")
    parser.add_argument("--face-model", default=os.environ.get("EMOVIEW_FACE_MODEL") or str(REPO.parent / "shared" / "models" / "face_landmarker.task"))
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.warmup % EVERY or args.warmup >= args.frames:
        parser.error(f"--warmup must be a multiple of {EVERY} and below --frames")

    results, ok = [], True
    for mode in args.modes.split(","):
        result = soak(args.video, args.frames, mode == "record", args.model, args.face_model, args.warmup)
        results.append(result)
        rss = result["rss_mb"]
        passed = result["growth_pct"] <= args.max_growth and result["frames"] == args.frames
        ok &= passed
        print(
            f"{mode:6s} {result['video']}: {result['frames']} frames ({result['loops']} loops) in {result['seconds']} s = "
            f"{result['fps']} fps; RSS start {rss['start']} MB (frame {result['rss_at_frame']['start']}), "
            f"middle {rss['middle']} MB, end {rss['end']} MB, max {rss['max']} MB; growth {result['growth_pct']:+.2f} % "
            f"(slope {result['slope_kb_per_1000_frames']:+.1f} KB/1000 frames); tracker: {result['tracker']['faces_held_at_end']} "
            f"held at end, max {result['tracker']['faces_held_max']}, {result['tracker']['ids_handed_out']} ids; "
            + (f"recorded {result['recorded_frames']} frames ({result['recorded_mb']} MB); " if result["recording"] else "")
            + ("PASS" if passed else f"FAIL (limit {args.max_growth} %)"),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
