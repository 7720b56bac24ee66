"""``patches``: a P x P patch and the label of its centre pixel (the report's CNN input)."""

from __future__ import annotations

import numpy as np

from blursynth.kinds._base import DatasetKind, FieldSpecs, register_kind

PROVENANCE_DTYPES = {
    "blur_type": np.uint8,
    "category": np.uint8,
    "image_index": np.int32,
    "center_y": np.int32,
    "center_x": np.int32,
}


def patch_fields(size: int, fmt: str) -> FieldSpecs:
    """``patches`` uint8 (3, P, P) and ``label`` uint8 (caffe: both float32, in [0, 1]), then
    the provenance of the row (blur type, category, source image, centre)."""
    pixel = np.float32 if fmt == "caffe" else np.uint8
    specs = {
        "patches": (np.dtype(pixel), (3, size, size)),
        "label": (np.dtype(pixel), ()),
    }
    specs.update({k: (np.dtype(v), ()) for k, v in PROVENANCE_DTYPES.items()})
    return specs


PATCHES = register_kind(
    DatasetKind(
        name="patches",
        size_param="patch_size",
        formats=("hdf5", "caffe"),
        fields=patch_fields,
        batch_fields=("patches", "label"),
        builder="blursynth.patches:build_patch_dataset",
        card="blursynth.dataset_card:patch_body",
        preview="blursynth.patch_preview:patch_grid",
        summary="blursynth.shards.verify:counts_table",
    )
)
