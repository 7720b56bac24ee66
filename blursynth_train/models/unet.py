"""A small fully convolutional encoder-decoder (U-Net-like) for dense blur segmentation.

Blocks, then assembly, as in milesial/Pytorch-UNet (``unet_parts.py`` + ``unet_model.py``):
each stage is two 3x3 conv + BatchNorm + ReLU; the encoder halves the resolution
``depth`` times with max pooling, the decoder doubles it back with bilinear upsampling and
concatenates the encoder's features of the same scale; a 1x1 conv gives per-pixel logits
(class 0 sharp; 1 blurred, or 1 motion, 2 defocus).

A stride-2 5x5 stem runs the U-Net at half resolution and the logits are upsampled
bilinearly. It takes any input size: :meth:`UNet.forward` pads to a multiple of
``2**(depth + 1)`` (reflect) and crops back. Parameters, MACs per megapixel and receptive
field of the shipped configuration are in ``docs/benchmarks.md`` (section dense).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """Architecture and input normalisation (stored in every checkpoint).

    Input: uint8 images ``(N, 3, H, W)``; the network sees ``(x / 255 - mean) / std``.
    """

    kind: str = "unet"
    classes: int = 2
    width: int = 16
    depth: int = 4
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def __post_init__(self):
        if self.kind != "unet":
            raise ValueError(f"UNetConfig is the unet family's, got kind {self.kind!r}")
        if self.classes not in (2, 3) or self.width < 4 or not 1 <= self.depth <= 6:
            raise ValueError(
                f"classes must be 2 or 3, width >= 4, depth 1..6; got {self.classes}, "
                f"{self.width}, {self.depth}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        d = dict(d)
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Per-pixel classifier: sharp (class 0) vs blurred, or sharp / motion / defocus."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = c = config or UNetConfig()
        widths = [c.width * 2**k for k in range(c.depth + 1)]
        # a stride-2 stem: the U-Net runs at half resolution (4x fewer MACs); the stem's
        # 5x5 window still sees every full-resolution pixel, where blur shows
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList(
            [_double_conv(widths[0], widths[0])]
            + [_double_conv(widths[k - 1], widths[k]) for k in range(1, c.depth + 1)]
        )
        self.up = nn.ModuleList(
            [_double_conv(widths[k + 1] + widths[k], widths[k]) for k in reversed(range(c.depth))]
        )
        self.head = nn.Conv2d(widths[0], c.classes, 1)
        self.register_buffer("mean", torch.tensor(c.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes, H, W)`` for uint8 images ``(N, 3, H, W)`` of any size."""
        h, w = x.shape[-2:]
        m = 2 ** (self.config.depth + 1)
        ph, pw = (-h) % m, (-w) % m
        x = (x.float() / 255.0 - self.mean) / self.std
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        full = x.shape[-2:]
        x = self.stem(x)
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        logits = F.interpolate(self.head(x), size=full, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
