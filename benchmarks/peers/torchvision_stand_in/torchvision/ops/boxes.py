"""`nms` and `batched_nms` as torchvision defines them: boxes (x0, y0, x1, y1), highest score
first, a box dropped when its IoU with a kept one is above the threshold; indices of the kept
boxes by decreasing score. Greedy, one vectorised IoU row per kept box, as MTCNN's own NMS does."""

import numpy as np
import torch


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    b = boxes.detach().cpu().double().numpy()
    order = np.argsort(-scores.detach().cpu().double().numpy(), kind="stable")
    x0, y0, x1, y1 = b.T
    areas = (x1 - x0) * (y1 - y0)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return torch.as_tensor(np.array(keep, dtype=np.int64), device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each `idxs` group: torchvision's trick of moving each group out of the others' way."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
