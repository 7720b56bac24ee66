"""Dense blur segmentation of whole images with a trained :class:`BlurNet`.

Every pixel is classified by its 31 x 31 neighbourhood (reflect padding at the borders) with
the exact fully-convolutional form :meth:`BlurNet.dense_probs`; ``stride`` 2 or 4 evaluates
every 2nd or 4th pixel and interpolates (see ``docs/benchmarks.md`` for its accuracy cost).

Outputs per image ``STEM`` in the output folder, each written atomically:

``STEM_prob.png``
    16-bit grey PNG, ``round(p * 65535)`` with ``p`` the probability of "blurred" (any image
    viewer shows it; :func:`read_prob_png` reads it back to within 1/131070).
``STEM_mask.png``
    8-bit mask, 255 = blurred (``p >= threshold``), 0 = sharp: the CUHK convention.
``STEM_overlay.png``
    the image with blurred regions tinted red and outlined.
``STEM_classes.png`` (3-class models)
    the image tinted green where sharp, red where motion-blurred, blue where defocused.

Test-time augmentation (``tta``, :data:`blursynth_train.choices.TTA`): the maps of the
image as it is (``none``), or the mean of the maps of its transforms, each turned back:
the four of ``flips`` (identity, left-right and up-down flips, half turn) or the eight of
``d4`` (those and the quarter turns with their flips). Blur, its direction and its type
are the same in a flipped or turned image, so the mean only averages out the model's own
orientation bias, at 4 or 8 times the inference cost.
"""

from __future__ import annotations

import glob
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from blursynth.errors import BlursynthError
from blursynth.imageio import IMAGE_EXTENSIONS, atomic_path, read_image_u8, write_png
from blursynth.postprocess import POSTPROCESS
from blursynth.postprocess import postprocess as apply_postprocess
from blursynth.progress import progressbar
from blursynth_train.checkpoint import load_model
from blursynth_train.choices import TTA

DEFAULT_TILE = 256
TINT = (255, 0, 0)
# Test-time augmentation (choices.TTA): the quarter turns and left-right flip of each
# transform. ``flips``: identity, left-right flip, half turn, up-down flip (half turn + flip).
_TTA_TRANSFORMS = {
    "none": ((0, False),),
    "flips": ((0, False), (0, True), (2, False), (2, True)),
    "d4": tuple((k, f) for k in range(4) for f in (False, True)),
}


def load_segmenter(model_path: str | Path | None, device: torch.device) -> nn.Module:
    """The model of a checkpoint, or of shipped weights: ``None`` or ``"bundled"`` (the
    default segmenter), ``"report"`` (the report's CNN)."""
    from blursynth_train.weights import resolve_weights

    model, _ = load_model(resolve_weights(model_path), device)
    return model


def expand_inputs(specs: list[str]) -> list[Path]:
    """Image files from files, folders (their images, not recursive) and glob patterns.

    Raises
    ------
    BlursynthError
        For a spec that matches nothing, or two images with the same stem (their outputs
        would overwrite each other).
    """
    paths: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(
                q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS
            )
        elif p.is_file():
            found = [p]
        else:
            found = sorted(
                Path(q)
                for q in glob.glob(spec)
                if Path(q).is_file() and Path(q).suffix.lower() in IMAGE_EXTENSIONS
            )
        if not found:
            raise BlursynthError("no image found (not a file, a folder of images or a glob)", spec)
        paths.extend(found)
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen and seen[p.stem].resolve() != p.resolve():
            raise BlursynthError(f"two inputs share the stem {p.stem!r} ({seen[p.stem]})", p)
        seen[p.stem] = p
    return list(seen.values())


def predict(
    model: nn.Module, image: np.ndarray, stride: int = 1, tile: int = DEFAULT_TILE
) -> np.ndarray:
    """Blur probability of every pixel.

    Parameters
    ----------
    model : nn.Module
        A model of any registered family (:mod:`blursynth_train.models`),
        In eval mode, on the device to use.
    image : uint8 (H, W, 3)
    stride : {1, 2, 4}

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` in [0, 1].
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(device)
    return model.dense_probs(x, stride=stride, tile=tile).cpu().numpy()


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 ``(H, W, 3)``: ``image`` tinted red where ``mask`` and outlined in red."""
    out = image.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.float32(TINT)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(min(mask.shape) / 300))
    cv2.drawContours(out, contours, -1, TINT, thickness)
    return out


def write_prob_png(path: str | Path, prob: np.ndarray) -> None:
    """Write a map in [0, 1] as a 16-bit grey PNG, atomically."""
    q = np.rint(np.clip(prob, 0, 1) * 65535).astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(q).save(tmp, format="PNG")


def read_prob_png(path: str | Path) -> np.ndarray:
    """Read a map written by :func:`write_prob_png`: float32 ``(H, W)`` in [0, 1]."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.dtype == np.uint8:  # an 8-bit map still reads right
        return arr.astype(np.float32) / 255
    return arr.astype(np.float32) / 65535


CLASS_COLOURS = np.array([(60, 180, 75), (230, 25, 75), (0, 130, 200)], dtype=np.float32)
"""Colours of sharp, motion and defocus in ``STEM_classes.png``."""


def class_map(image: np.ndarray, mask: np.ndarray, probs: np.ndarray, alpha: float = 0.5):
    """uint8 ``(H, W, 3)``: the image tinted by class: sharp where ``mask`` is off, else
    motion or defocus, whichever is more probable."""
    classes = np.where(mask, np.where(probs[1] >= probs[2], 1, 2), 0)
    out = (1 - alpha) * image.astype(np.float32) + alpha * CLASS_COLOURS[classes]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def model_maps(
    model: nn.Module,
    images: list[np.ndarray],
    stride: int = 1,
    tile: int = DEFAULT_TILE,
    tta: str = "none",
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Blur probability map and (3-class models) class probabilities of each image.

    With ``tta`` other than ``"none"`` (:data:`TTA`), both are the mean over the transforms
    of the image, each map turned back to the image's frame.

    Returns
    -------
    list of (prob, classes)
        ``prob`` float32 ``(H, W)`` in [0, 1]; ``classes`` float32 ``(3, H, W)`` or ``None``.
    """
    if tta not in TTA:
        raise BlursynthError(f"test-time augmentation must be one of {TTA}, got {tta!r}")
    transforms = _TTA_TRANSFORMS[tta]
    if len(transforms) == 1:
        return _maps(model, images, stride, tile)
    sums = None
    for turns, flip in transforms:
        seen = [_turn(im, turns, flip, axes=(0, 1)) for im in images]
        back = [
            tuple(None if m is None else _unturn(m, turns, flip) for m in maps)
            for maps in _maps(model, seen, stride, tile)
        ]
        sums = back if sums is None else [_plus(a, b) for a, b in zip(sums, back, strict=True)]
    n = np.float32(len(transforms))
    return [tuple(None if m is None else m / n for m in maps) for maps in sums]


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


def _maps(
    model: nn.Module, images: list[np.ndarray], stride: int, tile: int
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """:func:`model_maps` without test-time augmentation.

    A dense model (one with ``class_probs``) runs images of the same size as one batch
    (whole images up to 1024 px; larger ones alone, in overlapping tiles); the patch CNN
    takes them one by one at ``stride``.
    """
    if not hasattr(model, "class_probs"):
        return [(predict(model, im, stride, tile), None) for im in images]
    device = next(model.parameters()).device
    out: list = [None] * len(images)
    groups: dict = {}
    for k, im in enumerate(images):
        groups.setdefault(im.shape, []).append(k)
    for shape, members in groups.items():
        x = torch.from_numpy(np.stack([images[k].transpose(2, 0, 1) for k in members]))
        x = x.to(device)
        with torch.no_grad():
            if max(shape[:2]) <= 1024:
                probs = torch.softmax(model(x).float(), 1).cpu().numpy()
            else:
                probs = np.stack([model.class_probs(xi).cpu().numpy() for xi in x])
        for k, p in zip(members, probs, strict=True):
            out[k] = (np.clip(1.0 - p[0], 0.0, 1.0), p if len(p) == 3 else None)
    return out


def segment_images(
    model: nn.Module,
    paths: list[Path],
    out_dir: str | Path,
    *,
    stride: int = 1,
    threshold: float = 0.5,
    tile: int = DEFAULT_TILE,
    postprocess: str = "none",
    tta: str = "none",
    batch: int = 8,
    quiet: bool = False,
) -> tuple[list[dict], list[dict]]:
    """Segment images and write their probability map, mask and overlay (see module doc).

    ``postprocess`` (one of :data:`blursynth.postprocess.POSTPROCESS`) is applied to the
    probability map before thresholding (:func:`blursynth.postprocess.postprocess`);
    ``tta`` (:data:`TTA`) averages the maps of flipped and turned copies first. A
    3-class model also writes ``STEM_classes.png`` (:func:`class_map`). Images are read
    ``batch`` at a time, and a dense model segments those of one size together
    (:func:`model_maps`). An image that cannot be read is skipped and listed; the others
    are still segmented.

    Returns
    -------
    written : list of dict
        Per image: ``image``, ``prob``, ``mask``, ``overlay`` (and ``classes``) paths and
        ``blurred_fraction``.
    skipped : list of dict
        ``image`` and ``reason`` of every unreadable image.
    """
    if not 0 <= threshold <= 1:
        raise BlursynthError(f"threshold must be in [0, 1], got {threshold}")
    if postprocess not in POSTPROCESS:
        raise BlursynthError(f"post-processing must be one of {POSTPROCESS}, got {postprocess!r}")
    if tta not in TTA:
        raise BlursynthError(f"test-time augmentation must be one of {TTA}, got {tta!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if batch < 1:
        raise BlursynthError(f"batch must be >= 1, got {batch}")
    written, skipped = [], []
    with progressbar(length=len(paths), label="segment", quiet=quiet) as bar:
        for first in range(0, len(paths), batch):
            loaded = []
            for path in paths[first : first + batch]:
                try:
                    loaded.append((path, read_image_u8(path)))
                except BlursynthError as exc:
                    skipped.append({"image": str(path), "reason": exc.reason})
            maps = model_maps(model, [im for _, im in loaded], stride, tile, tta)
            for (path, image), (prob, classes) in zip(loaded, maps, strict=True):
                written.append(
                    _write_outputs(path, image, prob, classes, out_dir, threshold, postprocess)
                )
            bar.update(len(paths[first : first + batch]))
    return written, skipped


def _write_outputs(path: Path, image, prob, classes, out_dir: Path, threshold, postprocess):
    if postprocess != "none":
        prob = apply_postprocess(postprocess, image.astype(np.float32) / 255.0, prob)
    mask = prob >= threshold
    files = {k: out_dir / f"{path.stem}_{k}.png" for k in ("prob", "mask", "overlay")}
    write_prob_png(files["prob"], prob)
    write_png(files["mask"], mask.astype(np.uint8) * np.uint8(255))
    write_png(files["overlay"], overlay(image, mask))
    if classes is not None:
        files["classes"] = out_dir / f"{path.stem}_classes.png"
        write_png(files["classes"], class_map(image, mask, classes))
    return {
        "image": str(path),
        **{k: str(v) for k, v in files.items()},
        "blurred_fraction": float(mask.mean()),
    }
