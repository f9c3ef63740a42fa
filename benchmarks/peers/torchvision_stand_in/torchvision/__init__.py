"""A stand-in for torchvision in fer's benchmark venv (benchmarks/peers/build_fer_venv.sh), not torchvision.

facenet-pytorch's MTCNN, fer's second face detector, imports two things from torchvision:
`ops.boxes.batched_nms` and `transforms.functional` (for `to_tensor`). The torchvision wheels
reachable here are CUDA builds whose compiled ops do not load against the local CPU torch 2.13,
so this package provides those two, with torchvision's semantics, in NumPy and torch.
"""

__version__ = "0.0+emoview.stand-in"
