"""`to_tensor` as torchvision defines it for NumPy arrays: HWC -> CHW float, uint8 scaled to 0..1."""

import numpy as np
import torch


def to_tensor(pic) -> torch.Tensor:
    array = np.asarray(pic)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return tensor.float().div(255) if tensor.dtype == torch.uint8 else tensor
