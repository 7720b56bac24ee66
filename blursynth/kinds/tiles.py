"""``tiles``: S x S tiles of whole images with their S x S label maps (dense models)."""

from __future__ import annotations

import numpy as np

from blursynth.kinds._base import DatasetKind, FieldSpecs, register_kind


def tile_fields(size: int, fmt: str) -> FieldSpecs:
    """``image`` uint8 (3, S, S), ``label`` uint8 (S, S) (0 sharp, 1 blurred, or 0 sharp,
    1 motion, 2 defocus; 255 = padding, no label), ``blur_type`` of the source image,
    ``image_index``, and the tile's top-left ``y``, ``x`` in the image (negative where the
    image was padded)."""
    u8, i32 = np.dtype(np.uint8), np.dtype(np.int32)
    return {
        "image": (u8, (3, size, size)),
        "label": (u8, (size, size)),
        "blur_type": (u8, ()),
        "image_index": (i32, ()),
        "y": (i32, ()),
        "x": (i32, ()),
    }


TILES = register_kind(
    DatasetKind(
        name="tiles",
        size_param="tile_size",
        formats=("hdf5",),
        fields=tile_fields,
        batch_fields=("image", "label"),
        builder="blursynth.tiles:build_tile_dataset",
        card="blursynth.dataset_card:tile_body",
        preview="blursynth.patch_preview:tile_grid",
        summary="blursynth.kinds._base:rows_summary",
    )
)
