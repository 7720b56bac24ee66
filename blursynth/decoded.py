"""Each source image decoded once per dataset build.

Building a dataset needs every image twice: a scan (what each image offers, for the plan)
and, once the plan is made, the rows. :class:`DecodedCache` lets the scan keep what it
decoded as one raw ``.npy`` file per image in a folder of the dataset being built, which
later steps map back at memory speed instead of decoding the PNG or JPEG and the mask
again. The folder is temporary: the builders remove it when they finish, and remove a stale
one left by a killed run.

One file per image, uint8 ``(4, H, W)``: planes 0-2 the image, **planar** (the layout of
patches and tiles on disk, so cutting a row is a copy of whole pixel runs); plane 3 the
truth, packed:

* bits 0-1: the cell map (:func:`blursynth.patch_plan.cell_map`), whose low bit is the
  blur mask (cells 1 and 3 have a blurred centre);
* bits 2-3: ``1 + `` the pixel's blur type (0 sharp, 1 motion, 2 defocus) for a mixed
  synthetic image when the cache keeps them (``classes=True``), else 0.

One file and one write per image, and a 2-class build does not decode the per-pixel types
it never reads. Measured at 2,000 images on the
project's VM, this layout and the earlier one (2-3 files an image, each renamed into place)
build in the same time within that VM's noise; what a build there pays for is fresh memory
(``docs/benchmarks.md``). Nothing is written under a temporary name: the cache belongs to
one build, a worker that dies ends that build, and the next run removes the folder first.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blursynth.patch_plan import cell_map

DECODED_DIR = ".decoded"
CELL_BITS = np.uint8(0b0011)
CLASS_SHIFT = 2


@dataclass(frozen=True)
class DecodedCache:
    """Decoded images by item index, in ``folder`` (``None``: keep nothing); with
    ``classes``, the per-pixel blur types of the images that have them (3-class tiles)."""

    folder: Path | None
    classes: bool = False

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:07d}.npy"

    def store(self, source, item, index: int, patch_size: int) -> np.ndarray:
        """Decode one item, keep it (when the cache has a folder), return its cell map
        uint8 (H, W); an image smaller than the patch gets its blur mask instead (the caller
        skips it).

        Raises the source's :class:`~blursynth.BlursynthError` for an unreadable item.
        """
        image_u8, blur = source.load_u8(item)
        if blur.shape[0] < patch_size or blur.shape[1] < patch_size:
            return blur.astype(np.uint8)
        cells = cell_map(blur, patch_size)
        if self.folder is not None:
            kept = np.empty((4, *cells.shape), dtype=np.uint8)
            kept[:3] = image_u8.transpose(2, 0, 1)
            kept[3] = cells
            per_pixel = source.load_classes(item) if self.classes else None
            if per_pixel is not None:  # a mixed synthetic image: its per-pixel blur types
                kept[3] |= (per_pixel + np.uint8(1)) << np.uint8(CLASS_SHIFT)
            np.save(self._path(index), kept)
        return cells

    def load(self, index: int) -> np.ndarray:
        """The kept image and truth, uint8 (4, H, W), read whole (2x faster to cut from
        than a map): planes 0-2 the image (:meth:`planar` of it), plane 3 the packed truth
        (:func:`cells_of`, :func:`classes_of`)."""
        return np.load(self._path(index))

    def planar(self, index: int) -> np.ndarray:
        """The kept image, uint8 (3, H, W), contiguous."""
        return self.load(index)[:3]

    def truth(self, index: int) -> np.ndarray:
        """The kept truth plane, uint8 (H, W), read alone (a map of the file)."""
        return np.array(np.load(self._path(index), mmap_mode="r")[3])

    def cells(self, index: int) -> np.ndarray:
        """The kept cell map, uint8 (H, W); its low bit is the blur mask."""
        return cells_of(self.truth(index))


def cells_of(truth: np.ndarray) -> np.ndarray:
    """The cell map of a packed truth plane (0 sharp, 1 blurred, 2 and 3 mixed)."""
    return truth & CELL_BITS


def classes_of(truth: np.ndarray) -> np.ndarray | None:
    """The per-pixel blur types (0 sharp, 1 motion, 2 defocus) of a packed truth plane, or
    None where the cache kept none (an image of one blur type, or a cache without
    ``classes``)."""
    shifted = truth >> np.uint8(CLASS_SHIFT)
    if not truth.size or not shifted.flat[0]:
        return None
    return shifted - np.uint8(1)


def decoded_cache(out: Path, *, classes: bool = False) -> DecodedCache:
    """A fresh cache folder in the dataset folder ``out`` (a stale one is removed)."""
    folder = Path(out) / DECODED_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return DecodedCache(folder.resolve(), classes)


def remove_cache(cache: DecodedCache) -> None:
    if cache.folder is not None:
        shutil.rmtree(cache.folder, ignore_errors=True)
