"""Scores and pictures: accuracy, macro-F1, per-class P/R/F1, confusion matrix, training curves.

Macro-F1 is the number early stopping watches: FER2013 is 25 % happy and 1.5 % disgust, so plain
accuracy rewards ignoring the rare classes. Faces MediaPipe did not find are scored twice: left out
("detected faces") and counted as wrong ("all images"), which is what `emoview eval` reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def forward(model, windows: np.ndarray, crops: np.ndarray | None) -> np.ndarray:
    """One batch through a landmark-only model (`crops` None) or a fused one, as class probabilities."""
    from emoview.train.crop_augment import to_tensor

    x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    return (model(x, to_tensor(crops)) if crops is not None else model(x)).numpy()


def predict(model, ds, ctx, frames: int, batch: int = 512) -> np.ndarray:
    """Class probabilities (N, C) for every item/window of a set, without augmentation."""
    model.eval()
    fused = getattr(model, "encoder", None) is not None
    crops = getattr(ds, "crops", None)
    if fused and crops is None:
        from emoview.realtime.errors import InputError

        raise InputError(f"{ds.name} has no face crops, and this model looks at them; fused models train and score on still images")
    out = []
    for start in range(0, len(ds), batch):
        idx = np.arange(start, min(start + batch, len(ds)))
        out.append(forward(model, ds.windows(idx, frames, None, ctx, False), crops[idx] if fused else None))
    return np.concatenate(out) if out else np.zeros((0, model.config.classes), np.float32)


def scores(y: np.ndarray, pred: np.ndarray, labels: list[str], missed: list | None = None) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = len(labels)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=range(k), zero_division=0)
    present = support > 0  # macro over the classes the set has (CK+ has no neutral), as `emoview eval`
    result = {
        "items": int(len(y)),
        "accuracy": float(np.mean(y == pred)) if len(y) else 0.0,
        "macro_f1": float(np.mean(f[present])) if present.any() else 0.0,
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, name in enumerate(labels)
        },
        "confusion": confusion_matrix(y, pred, labels=range(k)).tolist(),
    }
    if missed:  # faces not found count as wrong ("no face", -1: a miss for recall, no class's false positive)
        y_all = np.concatenate([y, [labels.index(m[0]) for m in missed]])
        pred_all = np.concatenate([pred, np.full(len(missed), -1)])
        _, _, f_all, s_all = precision_recall_fscore_support(y_all, pred_all, labels=range(k), zero_division=0)
        result["all_images"] = {
            "items": int(len(y_all)), "faces_not_found": len(missed),
            "accuracy": float(np.mean(y_all == pred_all)), "macro_f1": float(np.mean(f_all[s_all > 0])),
        }
    return result


def evaluate(model, ds, ctx, labels: list[str], frames: int) -> tuple[dict, np.ndarray]:
    probs = predict(model, ds, ctx, frames)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    return scores(ds.y, pred, labels, ds.missed), probs


def plot_confusion(confusion: list, labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    left.plot(epochs, [h["val_loss"] for h in history], label="val loss")
    left.set_xlabel("epoch")
    left.legend()
    for key in ("val_accuracy", "val_macro_f1", "train_accuracy"):
        right.plot(epochs, [h[key] for h in history], label=key.replace("_", " "))
    for key in sorted({k for h in history for k in h if k.endswith("_holdout_accuracy")}):
        right.plot(epochs, [h.get(key, np.nan) for h in history], label=key.replace("_", " "), linestyle="--")
    right.set_xlabel("epoch")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
