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
from blursynth.kinds import get_kind
from blursynth.kinds.patches import PROVENANCE_DTYPES, patch_fields  # noqa: F401 (API)
from blursynth.kinds.tiles import tile_fields
from blursynth.schema import FORMATS

FIELDS = tuple(patch_fields(1, "hdf5"))
"""The fields of a patch dataset (:mod:`blursynth.kinds.patches`)."""


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00003-of-00010.h5`` (the Hugging Face naming)."""
    return f"{split}-{index:05d}-of-{count:05d}.h5"


def disk_field_name(name: str, fmt: str) -> str:
    """The HDF5 dataset name of a field: caffe calls the patches ``data``."""
    return "data" if (name == "patches" and fmt == "caffe") else name


TILE_FIELDS = tuple(tile_fields(1, "hdf5"))
"""The fields of a tile dataset (:mod:`blursynth.kinds.tiles`)."""


def field_specs(
    size: int, fmt: str, kind: str = "patches"
) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """dtype and per-row shape of every field on disk, keyed by API field name: the
    dataset kind's (:attr:`blursynth.kinds.DatasetKind.fields`) at row side ``size``."""
    if fmt not in FORMATS:
        raise BlursynthError(f"format must be one of {FORMATS}, got {fmt!r}")
    entry = get_kind(kind)
    if fmt not in entry.formats:
        raise BlursynthError(
            f"{kind} datasets are written as {' or '.join(entry.formats)}, not {fmt!r}"
        )
    return entry.fields(size, fmt)


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
