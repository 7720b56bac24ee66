"""Small image/mask trees for the patch-dataset tests, written as real PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def blob_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A bool map with a blurred rectangle covering roughly a third to a half of the image."""
    mask = np.zeros((h, w), dtype=bool)
    y0, x0 = rng.integers(0, h // 3), rng.integers(0, w // 3)
    mask[y0 : y0 + h // 2 + rng.integers(0, h // 4), x0 : x0 + w // 2 + rng.integers(0, w // 4)] = 1
    return mask


def make_tree(
    root: Path,
    *,
    motion: int = 6,
    defocus: int = 6,
    size=(48, 56),
    seed: int = 0,
    prefix=("motion", "out_of_focus"),
    white_is_blurred: bool = True,
) -> Path:
    """Write ``root/image/*.png`` + ``root/gt/*.png`` in the CUHK layout; return ``root``."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    h, w = size
    for kind, n in ((prefix[0], motion), (prefix[1], defocus)):
        for k in range(1, n + 1):
            stem = f"{kind}{k:04d}"
            image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            mask = blob_mask(h, w, rng)
            if not white_is_blurred:
                mask = ~mask
            Image.fromarray(image).save(root / "image" / f"{stem}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "gt" / f"{stem}.png")
    return root


def check_rows(dataset_path: Path) -> dict:
    """Check every row of a dataset against its source; return the per-split image sets.

    Label == mask at the centre, category == the GT inside the window, patch == the crop of
    the reflect-padded source image, provenance consistent with the manifest.
    """
    from blursynth.imageio import to_u8
    from blursynth.patches import PatchParams, open_items
    from blursynth.shards import BLUR_TYPES, open_dataset

    with open_dataset(dataset_path) as ds:
        params = PatchParams(**ds.params)
        source, items = open_items(params)
        images = ds.manifest["images"]
        p = params.patch_size
        r = p // 2
        seen = {}
        for split in ds.splits:
            rows = ds[split].read(0, len(ds[split]))
            seen[split] = set(np.unique(rows["image_index"]).tolist())
            for index in seen[split]:
                assert images[index]["split"] == split
                image, blur = source.load(items[index])
                sel = rows["image_index"] == index
                cy, cx = rows["center_y"][sel], rows["center_x"][sel]
                assert (rows["label"][sel] == blur[cy, cx]).all()
                code = BLUR_TYPES.index(images[index]["blur_type"])
                assert (rows["blur_type"][sel] == code).all()
                pad_img = np.pad(to_u8(image), ((r, r), (r, r), (0, 0)), mode="reflect")
                pad_blur = np.pad(blur, r, mode="reflect")
                for y, x, patch, cat in zip(
                    cy, cx, rows["patches"][sel], rows["category"][sel], strict=True
                ):
                    crop = pad_img[y : y + p, x : x + p].transpose(2, 0, 1)
                    assert np.array_equal(patch, crop)
                    window = pad_blur[y : y + p, x : x + p]
                    assert cat == (0 if not window.any() else 1 if window.all() else 2)
        return seen
