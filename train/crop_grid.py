"""A picture of the face crops a fused model sees: to look at before trusting its numbers.

    python -m emoview.train.crop_grid RUN VIDEO... [--face-model PATH]   # RUN/crops_videos.png

Training writes `crops_train.png` (aligned FER2013/CK+ crops) into its run folder by itself; this
script adds the same crops cut from videos by the runtime's own pipeline, so the two can be
compared side by side: if the live crops are framed differently from the training ones, the model
is being shown faces unlike any it learnt from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def save_grid(crops: np.ndarray, path: Path, title: str, columns: int = 16, count: int = 128, seed: int = 0) -> Path:
    """`count` crops (evenly drawn, reproducibly) tiled into one PNG with a title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(crops), size=min(count, len(crops)), replace=False))
    rows = int(np.ceil(len(pick) / columns))
    size = crops.shape[1]
    sheet = np.full((rows * (size + 2), columns * (size + 2)), 255, np.uint8)
    for n, i in enumerate(pick):
        r, c = divmod(n, columns)
        sheet[r * (size + 2) : r * (size + 2) + size, c * (size + 2) : c * (size + 2) + size] = crops[i]
    fig, ax = plt.subplots(figsize=(columns * 0.6, rows * 0.6 + 0.5), dpi=120)
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=255)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def video_crops(video: Path, face_model, spec, every: int = 10) -> np.ndarray:
    """Aligned crops of every face in every `every`-th frame, from the live landmarker."""
    import cv2

    from emoview.realtime.crop import align_crop
    from emoview.realtime.faces import FaceLandmarker

    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    out, index = [], 0
    with FaceLandmarker(face_model, max_faces=4, video=True) as landmarker:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            faces = landmarker.detect(frame, int(index * 1000 / fps))
            if index % every == 0:
                out += [align_crop(frame, spec.select_points(f.points), spec.layout_def, spec.crop) for f in faces]
            index += 1
    capture.release()
    return np.stack(out) if out else np.zeros((0, spec.crop, spec.crop), np.uint8)


def main(argv=None) -> int:
    from emoview.realtime.face_model import resolve_face_model
    from emoview.train.checkpoint import load_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--face-model", default=None)
    args = parser.parse_args(argv)
    _, spec, _ = load_run(args.run)
    if not spec.crop:
        parser.error(f"{args.run} is a landmark-only model: it has no crops")
    face_model = resolve_face_model(args.face_model)
    crops = np.concatenate([video_crops(v, face_model, spec) for v in args.videos])
    out = save_grid(crops, args.run / "crops_videos.png", f"crops from {', '.join(v.name for v in args.videos)} (every 10th frame)")
    print(f"{len(crops)} crops -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
