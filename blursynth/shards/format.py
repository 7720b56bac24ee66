"""Shard file format: names, fields, dtypes, attributes and checksums of one HDF5 shard.

Every shard holds only row-aligned datasets (same first dimension), so
``datasets.load_dataset("hdf5", data_files=...)`` loads it unchanged:

==============  =========================  ==============================================
name            dtype, shape               meaning
==============  =========================  ==============================================
``patches``     uint8 (N, 3, P, P)         RGB patch, NCHW (``--format caffe``: ``data``,
                                           float32 in [0, 1])
``label``       uint8 (N,)                 1 = the centre pixel is blurred (caffe: float32)
``blur_type``   uint8 (N,)                 index into ``BLUR_TYPES``
``category``    uint8 (N,)                 index into ``CATEGORIES`` (GT inside the window)
``image_index`` int32 (N,)                 index into the manifest's ``images``
``center_y/x``  int32 (N,)                 centre pixel in the source image
==============  =========================  ==============================================

Layout: datasets are **contiguous and uncompressed** (see ``docs/benchmarks.md``: natural
image patches barely compress with lzf/gzip, and a contiguous slice -- a random batch,
since rows are shuffled -- is then one read with no decompression). Files are written with
``track_times=False`` and no wall-clock metadata: the same plan gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.schema import FORMATS

FIELDS = ("patches", "label", "blur_type", "category", "image_index", "center_y", "center_x")
PROVENANCE_DTYPES = {
    "blur_type": np.uint8,
    "category": np.uint8,
    "image_index": np.int32,
    "center_y": np.int32,
    "center_x": np.int32,
}


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00003-of-00010.h5`` (the Hugging Face naming)."""
    return f"{split}-{index:05d}-of-{count:05d}.h5"


def disk_field_name(name: str, fmt: str) -> str:
    """The HDF5 dataset name of a field: caffe calls the patches ``data``."""
    return "data" if (name == "patches" and fmt == "caffe") else name


TILE_FIELDS = ("image", "label", "blur_type", "image_index", "y", "x")
"""Fields of a tile dataset: ``image`` uint8 (N, 3, S, S), ``label`` uint8 (N, S, S) (0 sharp,
1 blurred, or 0 sharp, 1 motion, 2 defocus; 255 = padding, no label), ``blur_type`` of the
source image, ``image_index``, and the tile's top-left ``y``, ``x`` in the image (negative
where the image was padded)."""


def field_specs(
    size: int, fmt: str, kind: str = "patches"
) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """dtype and per-row shape of every field on disk, keyed by API field name.

    ``size`` is the patch size (kind ``patches``) or tile size (kind ``tiles``).
    """
    if fmt not in FORMATS:
        raise BlursynthError(f"format must be one of {FORMATS}, got {fmt!r}")
    if kind == "tiles":
        if fmt != "hdf5":
            raise BlursynthError(f"tile datasets are written as hdf5, not {fmt!r}")
        u8, i32 = np.dtype(np.uint8), np.dtype(np.int32)
        return {
            "image": (u8, (3, size, size)),
            "label": (u8, (size, size)),
            "blur_type": (u8, ()),
            "image_index": (i32, ()),
            "y": (i32, ()),
            "x": (i32, ()),
        }
    patch_size = size
    pixel, label = (np.float32, np.float32) if fmt == "caffe" else (np.uint8, np.uint8)
    specs = {
        "patches": (np.dtype(pixel), (3, patch_size, patch_size)),
        "label": (np.dtype(label), ()),
    }
    specs.update({k: (np.dtype(v), ()) for k, v in PROVENANCE_DTYPES.items()})
    return specs


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def attr_value(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "null"
    return value


def shard_attrs(path: str | Path) -> dict:
    """Root attributes of a shard (JSON strings left as they are)."""
    with h5py.File(path, "r") as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
