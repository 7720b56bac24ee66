"""The report's CNN and its exact fully-convolutional (dense) form.

Patch network (input 31x31x3)::

    conv 96@7x7 -> ReLU -> maxpool 2/2 (ceil) -> conv 256@5x5 -> ReLU -> maxpool 2/2 (ceil)
    -> FC 1024 -> ReLU -> dropout 0.5 -> FC 2 -> softmax

Spatial sizes 31 -> 25 -> 13 -> 9 -> 5 (pooling rounds up as Caffe and Mocha do), so FC1 has
6400 x 1024 weights.

Dense form
----------
:meth:`BlurNet.dense_probs` classifies every pixel of a whole image by its 31x31 neighbourhood
(reflect padding) and equals running the patch network on each pixel's patch. Pooling becomes
stride-1 and later layers are dilated (à trous). Ceil-mode pooling makes the *last* pooling
window of every patch hold one element instead of two, so each pooled map exists in a
"normal" and an "edge" variant per axis, and each tap of the next layer reads the variant the
patch network would have read. The cost per pixel is about that of one FC1 evaluation
(6.5 MMAC) instead of the whole network (~65 MMAC); ``stride > 1`` evaluates every
``stride``-th pixel for a further ``stride**2`` saving on the dominant FC1 term.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and input normalisation (stored in every checkpoint).

    Input: uint8 patches ``(N, 3, P, P)``; the network sees ``(x / 255 - mean) / std``.
    """

    kind: str = "blurnet"
    patch_size: int = 31
    conv1_channels: int = 96
    conv1_kernel: int = 7
    conv2_channels: int = 256
    conv2_kernel: int = 5
    fc_units: int = 1024
    dropout: float = 0.5
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def __post_init__(self):
        if self.kind != "blurnet":
            raise ValueError(f"ModelConfig is the blurnet family's, got kind {self.kind!r}")
        if self.patch_size % 2 == 0 or self.patch_size < 3:
            raise ValueError(f"patch_size must be odd and >= 3, got {self.patch_size}")
        if self.pooled_size(2) < 1:
            raise ValueError(f"patch_size {self.patch_size} is too small for the kernels")

    @property
    def classes(self) -> int:
        """Sharp and blurred: the report's two classes."""
        return 2

    def pooled_size(self, stage: int) -> int:
        """Spatial size after pooling stage 1 or 2 (ceil mode)."""
        s = -(-(self.patch_size - self.conv1_kernel + 1) // 2)
        if stage == 1:
            return s
        return -(-(s - self.conv2_kernel + 1) // 2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


class BlurNet(nn.Module):
    """Sharp (class 0) / blurred (class 1) classifier of a patch's centre pixel."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = c = config or ModelConfig()
        self.conv1 = nn.Conv2d(3, c.conv1_channels, c.conv1_kernel)
        self.conv2 = nn.Conv2d(c.conv1_channels, c.conv2_channels, c.conv2_kernel)
        s2 = c.pooled_size(2)
        self.fc1 = nn.Linear(c.conv2_channels * s2 * s2, c.fc_units)
        self.dropout = nn.Dropout(c.dropout)
        self.fc2 = nn.Linear(c.fc_units, 2)
        self.register_buffer("mean", torch.tensor(c.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (or float in [0, 255]) -> network input."""
        return (x.float() / 255.0 - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 2)`` for uint8 patches ``(N, 3, P, P)``."""
        x = self.normalise(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2, ceil_mode=True)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2, ceil_mode=True)
        x = self.dropout(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)

    # ---- dense form ------------------------------------------------------------------------

    @torch.no_grad()
    def dense_probs(self, image: torch.Tensor, stride: int = 1, tile: int = 256) -> torch.Tensor:
        """Blur probability of every pixel of ``image``.

        Parameters
        ----------
        image : uint8 or float tensor ``(3, H, W)`` with values in [0, 255]
        stride : int
            1 for every pixel (exact); 2 or 4 evaluate every ``stride``-th pixel and upsample
            the probability map bilinearly.
        tile : int
            Output tile side; bounds memory for large images (tiles overlap by the patch).

        Returns
        -------
        torch.Tensor
            float32 ``(H, W)``, probability of class 1 (blurred).
        """
        if stride not in (1, 2, 4):
            raise ValueError(f"stride must be 1, 2 or 4, got {stride}")
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
        tile = max(stride, tile - tile % stride)
        _, H, W = image.shape
        r = self.config.patch_size // 2
        x = self.normalise(image[None])
        x = F.pad(x, (r, r, r, r), mode="reflect") if min(H, W) > r else _pad_reflect_big(x, r)
        out = torch.empty((-(-H // stride), -(-W // stride)), device=x.device)
        for y0 in range(0, H, tile):
            for x0 in range(0, W, tile):
                h, w = min(tile, H - y0), min(tile, W - x0)
                crop = x[..., y0 : y0 + h + 2 * r, x0 : x0 + w + 2 * r]
                logits = self._dense_logits(crop, stride)
                p = torch.softmax(logits, dim=1)[0, 1]
                oh, ow = -(-h // stride), -(-w // stride)
                ys, xs = y0 // stride, x0 // stride
                out[ys : ys + oh, xs : xs + ow] = p[:oh, :ow]
        if stride > 1:
            out = _upsample(out, stride, H, W)
        return out

    def _dense_logits(self, x: torch.Tensor, stride: int) -> torch.Tensor:
        """Logits at every patch offset of a normalised, already padded input ``(1,3,N,M)``.

        Output index ``o`` is the patch whose top-left input pixel is ``o`` (every
        ``stride``-th). Maps are zero-padded at the bottom/right so that variants of different
        lengths line up; padded values never reach a valid output.
        """
        c = self.config
        k2, s2 = c.conv2_kernel, c.pooled_size(2)
        n1 = c.pooled_size(1)
        single1 = (c.patch_size - c.conv1_kernel + 1) % 2 == 1
        single2 = (n1 - k2 + 1) % 2 == 1
        # Outputs at every stride-th offset (stride even) read pool-1, conv2 and pool-2 only at
        # even positions: from pool-1 on, work on the grid subsampled by g = 2 (a 4x saving on
        # conv2); dilations and the output stride shrink by g.
        g = 2 if stride % 2 == 0 else 1
        conv1 = F.relu(self.conv1(x))
        # pool-1 variants: [edge_y][edge_x]; an "edge" axis takes the single element
        p1 = {
            (ey, ex): _pool_axes(conv1, ey and single1, ex and single1, 1)[..., ::g, ::g]
            for ey in (0, 1)
            for ex in (0, 1)
        }
        z = self._conv2_variants(p1, k2, 2 // g)
        # pool-2 variants (dilation 2 on the full grid)
        d2 = 2 // g
        p2 = {(gy, gx): _pool2(z, gy, gx, single2, d=d2) for gy in (0, 1) for gx in (0, 1)}
        # FC1 as an s2 x s2 conv with dilation 4 (full grid); tap s2-1 reads the edge variant
        w1 = self.fc1.weight.view(c.fc_units, c.conv2_channels, s2, s2)
        d1 = 4 // g
        acc = None
        for ty0, ty1, gy in _tap_blocks(s2, 1):
            for tx0, tx1, gx in _tap_blocks(s2, 1):
                part = _shifted_conv(
                    p2[(gy, gx)],
                    w1[:, :, ty0:ty1, tx0:tx1],
                    (ty0 * d1, tx0 * d1),
                    dilation=d1,
                    stride=stride // g,
                )
                acc = part if acc is None else _add_aligned(acc, part)
        h = F.relu(acc + self.fc1.bias.view(1, -1, 1, 1))
        return F.conv2d(h, self.fc2.weight[:, :, None, None], self.fc2.bias)

    def _conv2_variants(self, p1: dict, k2: int, d2: int) -> dict:
        """conv2 outputs in normal/edge variants ``[fy][fx]``: an output is "edge" iff it
        reads the last pool-1 cell; ``d2`` the dilation on the (maybe subsampled) grid."""
        w2, b2 = self.conv2.weight, self.conv2.bias
        parts: dict = {}  # a tap block's partial conv is shared by the variants that read it
        z = {}
        for fy in (0, 1):
            for fx in (0, 1):
                acc = None
                for ty0, ty1, ey in _tap_blocks(k2, fy):
                    for tx0, tx1, ex in _tap_blocks(k2, fx):
                        key = (ty0, ty1, ey, tx0, tx1, ex)
                        if key not in parts:
                            parts[key] = _shifted_conv(
                                p1[(ey, ex)],
                                w2[:, :, ty0:ty1, tx0:tx1],
                                (ty0 * d2, tx0 * d2),
                                dilation=d2,
                            )
                        acc = parts[key] if acc is None else _add_aligned(acc, parts[key])
                z[(fy, fx)] = F.relu(acc + b2.view(1, -1, 1, 1))
        return z

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _tap_blocks(k: int, edge: int):
    """Split taps 0..k-1 into the blocks ``[0, k-1)`` and ``[k-1, k)`` with the variant each
    reads.

    Only the last tap of an edge output reads the edge map. Every output uses the same two
    blocks, so the partial convolutions of the shared blocks are computed once.
    """
    return ([(0, k - 1, 0)] if k > 1 else []) + [(k - 1, k, edge)]


def _pool_axes(x: torch.Tensor, single_y: bool, single_x: bool, dilation: int) -> torch.Tensor:
    """Stride-1 max over ``{p, p + dilation}`` along each axis, or the element alone where the
    axis is "single". Output keeps the input size (zero-padded at the end)."""
    if not single_y:
        x = torch.maximum(x, F.pad(x[..., dilation:, :], (0, 0, 0, dilation)))
    if not single_x:
        x = torch.maximum(x, F.pad(x[..., :, dilation:], (0, dilation, 0, 0)))
    return x


def _shifted_conv(x, w, offset, dilation, stride=1):
    """Dilated conv of a block of taps whose first tap sits ``offset`` pixels into the window."""
    oy, ox = offset
    return F.conv2d(x[..., oy:, ox:], w, dilation=dilation, stride=stride)


def _add_aligned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    h, w = min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1])
    return a[..., :h, :w] + b[..., :h, :w]


def _pad_reflect_big(x: torch.Tensor, r: int) -> torch.Tensor:
    """Reflect padding for images smaller than the pad width (repeat reflections)."""
    import numpy as np

    arr = x[0].cpu().numpy()
    padded = np.pad(arr, ((0, 0), (r, r), (r, r)), mode="reflect")
    return torch.from_numpy(padded)[None].to(x.device)


def _upsample(p: torch.Tensor, stride: int, H: int, W: int) -> torch.Tensor:
    """Bilinear upsampling of a map sampled at pixels 0, s, 2s, ... to the full ``(H, W)`` grid.

    Samples keep their values at their own pixels; pixels past the last sample repeat it.
    """
    h, w = p.shape
    big = F.interpolate(
        p[None, None],
        size=((h - 1) * stride + 1, (w - 1) * stride + 1),
        mode="bilinear",
        align_corners=True,
    )
    pad_y, pad_x = max(0, H - big.shape[-2]), max(0, W - big.shape[-1])
    big = F.pad(big, (0, pad_x, 0, pad_y), mode="replicate")
    return big[0, 0, :H, :W]


def _pool2(z: dict, gy: int, gx: int, single: bool, d: int = 2) -> torch.Tensor:
    """Stride-1 pool-2 (dilation ``d``) of conv2 variant ``(gy, gx)``.

    Along an edge axis the last pooling window holds either the edge conv2 output alone
    (``single``) or the pair (normal output, edge output), so its first element is read from
    the variant that is normal along that axis.
    """

    def elements(edge):  # (shift, variant) of each element of the window along one axis
        if edge and single:
            return [(0, 1)]
        return [(0, 0), (d, edge)]

    out = None
    for sy, vy in elements(gy):
        for sx, vx in elements(gx):
            x = z[(vy, vx)]
            x = F.pad(x[..., sy:, sx:], (0, sx, 0, sy))
            out = x if out is None else torch.maximum(out, x)
    return out
