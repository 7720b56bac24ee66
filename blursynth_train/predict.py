"""One typed predictor for every model family: uint8 images in, :class:`Prediction` out.

``segment``, ``evaluate`` and the Python API (:class:`Segmenter`) all go through
:class:`Predictor`, which asks the family (:attr:`ModelFamily.dense`, ``config.classes``)
instead of probing the model:

* a dense model runs images of the same size as one batch (whole images up to ``tile`` px;
  larger ones alone, in overlapping windows, to bound memory);
* the report's patch CNN classifies every pixel by its 31x31 patch
  (:meth:`BlurNet.dense_probs`, at ``stride`` 1, 2 or 4).

Test-time augmentation (``tta``, :data:`blursynth_train.choices.TTA`): the maps of the
image as it is (``none``), or the mean of the maps of its transforms, each turned back:
the four of ``flips`` (identity, left-right and up-down flips, half turn) or the eight of
``d4`` (those and the quarter turns with their flips). Blur, its direction and its type
are the same in a flipped or turned image, so the mean only averages out the model's own
orientation bias, at 4 or 8 times the inference cost.

Example
-------
>>> from blursynth_train.predict import Segmenter
>>> prob, labels = Segmenter("bundled").predict(image)  # image: uint8 (H, W, 3) RGB
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from blursynth.errors import BlursynthError
from blursynth.imageio import to_u8
from blursynth.postprocess import POSTPROCESS
from blursynth.postprocess import postprocess as apply_postprocess
from blursynth_train.checkpoint import load_model
from blursynth_train.choices import STRIDES, TTA
from blursynth_train.models import family_of

DEFAULT_TILE = 1024
"""Dense models take whole images up to this side; larger ones go in overlapping windows."""
TILE_MARGIN = 64
# Test-time augmentation (choices.TTA): the quarter turns and left-right flip of each
# transform. ``flips``: identity, left-right flip, half turn, up-down flip (half turn + flip).
_TTA_TRANSFORMS = {
    "none": ((0, False),),
    "flips": ((0, False), (0, True), (2, False), (2, True)),
    "d4": tuple((k, f) for k in range(4) for f in (False, True)),
}


@dataclass
class Prediction:
    """What a model says of one image.

    Attributes
    ----------
    prob : float32 (H, W)
        Probability of "blurred" (1 - P(sharp)), in [0, 1].
    classes : float32 (3, H, W) or None
        Probabilities of sharp, motion and defocus (3-class models only).
    """

    prob: np.ndarray
    classes: np.ndarray | None = None

    def labels(self, threshold: float = 0.5) -> np.ndarray:
        """uint8 ``(H, W)``: 0 sharp, 1 blurred (``prob >= threshold``); for a 3-class model
        1 motion, 2 defocus (whichever of the two is more probable where blurred)."""
        blurred = self.prob >= threshold
        if self.classes is None:
            return blurred.astype(np.uint8)
        kind = np.where(self.classes[1] >= self.classes[2], 1, 2).astype(np.uint8)
        return np.where(blurred, kind, 0).astype(np.uint8)


class Predictor:
    """A model's predictions of whole images (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        A model of a registered family, in eval mode, on the device to use.
    stride : {1, 2, 4}
        Patch models only: evaluate every ``stride``-th pixel and interpolate.
    tta : {"none", "flips", "d4"}
    tile : int
        Dense models: larger images go in overlapping windows of this size.
    """

    def __init__(self, model: nn.Module, *, stride: int = 1, tta: str = "none", tile=DEFAULT_TILE):
        if tta not in TTA:
            raise BlursynthError(f"test-time augmentation must be one of {TTA}, got {tta!r}")
        if stride not in STRIDES:
            raise BlursynthError(f"stride must be one of {STRIDES}, got {stride}")
        if tile < 2 * TILE_MARGIN + 32:
            raise BlursynthError(f"tile must be >= {2 * TILE_MARGIN + 32}, got {tile}")
        self.model, self.stride, self.tta, self.tile = model, stride, tta, tile
        self.dense = family_of(model.config).dense
        self.classes = int(model.config.classes)
        self.device = next(model.parameters()).device

    def __call__(self, images: list[np.ndarray]) -> list[Prediction]:
        """Predictions of uint8 ``(H, W, 3)`` images (any sizes)."""
        for im in images:
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"images must be uint8 (H, W, 3), got {im.dtype} {im.shape}")
        transforms = _TTA_TRANSFORMS[self.tta]
        sums = None
        for turns, flip in transforms:
            seen = [_turn(im, turns, flip, axes=(0, 1)) for im in images]
            back = [
                tuple(None if m is None else _unturn(m, turns, flip) for m in maps)
                for maps in self._maps(seen)
            ]
            sums = back if sums is None else [_plus(a, b) for a, b in zip(sums, back, strict=True)]
        n = np.float32(len(transforms))
        return [Prediction(*(None if m is None else m / n for m in maps)) for maps in sums]

    def _maps(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(blur probability, class probabilities or None) of each image, no TTA."""
        if not self.dense:
            return [(self._patch_map(im), None) for im in images]
        out: list = [None] * len(images)
        groups: dict = {}
        for k, im in enumerate(images):
            groups.setdefault(im.shape, []).append(k)
        for shape, members in groups.items():
            x = torch.from_numpy(np.stack([images[k].transpose(2, 0, 1) for k in members]))
            x = x.to(self.device)
            with torch.no_grad():
                if max(shape[:2]) <= self.tile:
                    probs = torch.softmax(self.model(x).float(), 1).cpu().numpy()
                else:
                    probs = np.stack([self._windows(xi).cpu().numpy() for xi in x])
            for k, p in zip(members, probs, strict=True):
                out[k] = (np.clip(1.0 - p[0], 0.0, 1.0), p if self.classes == 3 else None)
        return out

    def _patch_map(self, image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(self.device)
        return self.model.dense_probs(x, stride=self.stride).cpu().numpy()

    @torch.no_grad()
    def _windows(self, image: torch.Tensor) -> torch.Tensor:
        """Softmax ``(classes, H, W)`` of one large image ``(3, H, W)`` in overlapping windows
        of ``tile`` px; each keeps the centre part that lies ``TILE_MARGIN`` px inside it."""
        _, H, W = image.shape
        out = torch.empty((self.classes, H, W), device=image.device)
        step = self.tile - 2 * TILE_MARGIN
        for y0 in range(0, H, step):
            for x0 in range(0, W, step):
                ya, xa = max(0, y0 - TILE_MARGIN), max(0, x0 - TILE_MARGIN)
                ye, xe = min(H, y0 + step + TILE_MARGIN), min(W, x0 + step + TILE_MARGIN)
                p = torch.softmax(self.model(image[None, :, ya:ye, xa:xe]).float(), 1)[0]
                h, w = min(step, H - y0), min(step, W - x0)
                out[:, y0 : y0 + h, x0 : x0 + w] = p[
                    :, y0 - ya : y0 - ya + h, x0 - xa : x0 - xa + w
                ]
        return out


def load_segmenter(model_path: str | Path | None, device: torch.device) -> nn.Module:
    """The model of a checkpoint, or of shipped weights: ``None`` or ``"bundled"`` (the
    default segmenter), ``"report"`` (the report's CNN)."""
    from blursynth_train.weights import resolve_weights

    model, _ = load_model(resolve_weights(model_path), device)
    return model


def model_maps(
    model: nn.Module,
    images: list[np.ndarray],
    stride: int = 1,
    tile: int = DEFAULT_TILE,
    tta: str = "none",
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(prob, classes)`` of each image: :class:`Predictor` as plain tuples."""
    preds = Predictor(model, stride=stride, tta=tta, tile=tile)(images)
    return [(p.prob, p.classes) for p in preds]


def predict(model: nn.Module, image: np.ndarray, stride: int = 1, tile=DEFAULT_TILE) -> np.ndarray:
    """Blur probability, float32 ``(H, W)`` in [0, 1], of one uint8 ``(H, W, 3)`` image."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return Predictor(model, stride=stride, tile=tile)([image])[0].prob


class Segmenter:
    """Blur segmentation of NumPy images with shipped or trained weights: the one-liner.

    Parameters
    ----------
    model : str or path
        ``"bundled"`` (the default 2-class model), ``"types"`` (sharp / motion / defocus),
        ``"report"`` (the report's patch CNN), or a checkpoint from ``fit`` / ``export``.
    device : {"auto", "cpu", "cuda"}
    batch : int
        Images per forward pass in :meth:`predict_batch` (same-size images batch together).
    tta : {"none", "flips", "d4"}
    postprocess : str
        One of :data:`blursynth.postprocess.POSTPROCESS`, applied to the blur probability.
    threshold : float
        ``prob >= threshold`` is blurred in the labels.
    stride : {1, 2, 4}
        The report CNN's evaluation stride (dense models ignore it).

    Examples
    --------
    >>> seg = Segmenter("types")
    >>> prob, labels = seg.predict(image)  # labels: 0 sharp, 1 motion, 2 defocus
    """

    def __init__(
        self,
        model: str | Path = "bundled",
        *,
        device: str = "auto",
        batch: int = 8,
        tta: str = "none",
        postprocess: str = "none",
        threshold: float = 0.5,
        stride: int = 1,
    ):
        from blursynth_train.device import resolve_device

        if postprocess not in POSTPROCESS:
            raise BlursynthError(
                f"post-processing must be one of {POSTPROCESS}, got {postprocess!r}"
            )
        if not 0 <= threshold <= 1 or batch < 1:
            raise BlursynthError(
                f"threshold must be in [0, 1] and batch >= 1, got {threshold}, {batch}"
            )
        self.model = load_segmenter(model, resolve_device(device))
        self.predictor = Predictor(self.model, stride=stride, tta=tta)
        self.batch, self.postprocess, self.threshold = batch, postprocess, threshold

    @property
    def classes(self) -> int:
        """2 (sharp, blurred) or 3 (sharp, motion, defocus)."""
        return self.predictor.classes

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(prob, labels)`` of one RGB image (uint8, or float in [0, 1]; grey is repeated).

        ``prob`` float32 ``(H, W)`` in [0, 1], the probability of blur; ``labels`` uint8
        ``(H, W)``: 0 sharp, 1 blurred, or for a 3-class model 1 motion, 2 defocus.
        """
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict` of each image, ``batch`` at a time."""
        out = []
        for first in range(0, len(images), self.batch):
            chunk = [_as_rgb_u8(im) for im in images[first : first + self.batch]]
            for im, pred in zip(chunk, self.predictor(chunk), strict=True):
                if self.postprocess != "none":
                    pred.prob = apply_postprocess(
                        self.postprocess, im.astype(np.float32) / 255.0, pred.prob
                    )
                out.append((pred.prob, pred.labels(self.threshold)))
        return out


def _as_rgb_u8(image) -> np.ndarray:
    """uint8 ``(H, W, 3)`` from an RGB or grey array, uint8 or float in [0, 1]."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise BlursynthError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise BlursynthError(f"image must be uint8 or float in [0, 1], got {a.dtype}")
        a = to_u8(a)
    return np.ascontiguousarray(a)


def _plus(a: tuple, b: tuple) -> tuple:
    """Slot-wise sum of two (prob, classes) pairs (``classes`` may be None in both)."""
    return tuple(None if x is None else x + y for x, y in zip(a, b, strict=True))


def _turn(a: np.ndarray, turns: int, flip: bool, axes=(-2, -1)) -> np.ndarray:
    """``a`` turned ``turns`` quarter turns, then flipped left-right, in the plane of ``axes``."""
    a = np.rot90(a, turns, axes=axes)
    if flip:
        a = np.flip(a, axis=axes[1])
    return np.ascontiguousarray(a)


def _unturn(a: np.ndarray, turns: int, flip: bool, axes=(-2, -1)) -> np.ndarray:
    """The inverse of :func:`_turn`."""
    if flip:
        a = np.flip(a, axis=axes[1])
    return np.ascontiguousarray(np.rot90(a, -turns, axes=axes))
