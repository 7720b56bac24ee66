"""The one device resolver of the trainer, segmenter and evaluator."""

from __future__ import annotations

import torch

from blursynth.errors import BlursynthError
from blursynth_train.choices import DEVICES


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name not in DEVICES:
        raise BlursynthError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BlursynthError("--device cuda: no CUDA device is available (use cpu or auto)")
    return torch.device(name)
