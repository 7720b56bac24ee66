"""Each source image decoded once per dataset build.

Building a dataset needs every image twice: a scan (what each image offers, for the plan)
and, once the plan is made, the rows. :class:`DecodedCache` lets the scan keep what it
decoded (the uint8 pixels, planar, and the cell map, :func:`blursynth.patch_plan.cell_map`)
as raw ``.npy`` files in a folder of the dataset being built, which later steps map back at
memory speed instead of decoding the JPEG and the mask again. The folder is temporary: the
builders remove it when they finish, and remove a stale one left by a killed run.

The blur mask is the cell map's low bit (cells 1 and 3 have a blurred centre).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blursynth.patch_plan import cell_map

DECODED_DIR = ".decoded"


@dataclass(frozen=True)
class DecodedCache:
    """Decoded images by item index, in ``folder`` (``None``: keep nothing).

    Each image is kept **planar**, uint8 ``(3, H, W)`` (the layout of patches and tiles on
    disk, so cutting a row is a copy of whole pixel runs), with its cell map.
    """

    folder: Path | None

    def _paths(self, index: int) -> tuple[Path, Path]:
        return self.folder / f"{index:07d}.chw.npy", self.folder / f"{index:07d}.cells.npy"

    def _classes_path(self, index: int) -> Path:
        return self.folder / f"{index:07d}.classes.npy"

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
            planar = np.ascontiguousarray(image_u8.transpose(2, 0, 1))
            kept = list(zip(self._paths(index), (planar, cells), strict=True))
            classes = source.load_classes(item)
            if classes is not None:  # a mixed synthetic image: its per-pixel blur types
                kept.append((self._classes_path(index), classes))
            for path, array in kept:
                tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npy")
                np.save(tmp, array)
                os.replace(tmp, path)  # whole or absent
        return cells

    def planar(self, index: int) -> np.ndarray:
        """The kept image, uint8 (3, H, W) (read whole: 2x faster to cut from than a map)."""
        return np.load(self._paths(index)[0])

    def classes(self, index: int) -> np.ndarray | None:
        """The kept per-pixel blur types (0 sharp, 1 motion, 2 defocus) of an image that has
        them (a mixed synthetic image), else None."""
        path = self._classes_path(index)
        return np.load(path) if path.is_file() else None

    def cells(self, index: int) -> np.ndarray:
        """The kept cell map, uint8 (H, W); its low bit is the blur mask."""
        return np.load(self._paths(index)[1])


def decoded_cache(out: Path) -> DecodedCache:
    """A fresh cache folder in the dataset folder ``out`` (a stale one is removed)."""
    folder = Path(out) / DECODED_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return DecodedCache(folder.resolve())


def remove_cache(cache: DecodedCache) -> None:
    if cache.folder is not None:
        shutil.rmtree(cache.folder, ignore_errors=True)
