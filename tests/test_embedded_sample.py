"""The embedded VOC-layout sample (datasets/embedded) is complete, consistent and small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EMBEDDED = Path(__file__).resolve().parents[1] / "datasets" / "embedded"
VOC = EMBEDDED / "VOCdevkit" / "VOC2012"
ALLOWED = set(range(21)) | {255}


def _ids() -> list[str]:
    return sorted(p.stem for p in (VOC / "JPEGImages").glob("*.jpg"))


def test_tree_exists() -> None:
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        assert (VOC / sub).is_dir(), sub
    assert (EMBEDDED / "README.md").is_file()
    assert len(_ids()) >= 6


@pytest.mark.parametrize("ident", _ids())
def test_image_has_palette_mask(ident: str) -> None:
    with Image.open(VOC / "JPEGImages" / f"{ident}.jpg") as im:
        assert im.mode == "RGB"
        size = im.size
    assert max(size) <= 500
    with Image.open(VOC / "SegmentationClass" / f"{ident}.png") as m:
        assert m.mode == "P"
        assert m.size == size
        palette = m.getpalette()
        label = np.asarray(m)
    assert palette is not None
    # standard VOC colour map: 1 = aeroplane (128, 0, 0), 15 = person (192, 128, 128)
    assert palette[3:6] == [128, 0, 0]
    assert palette[45:48] == [192, 128, 128]
    assert set(np.unique(label).tolist()) <= ALLOWED


def test_masks_have_no_orphans() -> None:
    masks = sorted(p.stem for p in (VOC / "SegmentationClass").glob("*.png"))
    assert masks == _ids()


def test_split_files_name_existing_ids() -> None:
    ids = set(_ids())
    sets = VOC / "ImageSets" / "Segmentation"
    split = {}
    for name in ("train", "val", "trainval"):
        lines = (sets / f"{name}.txt").read_text().split()
        assert lines, name
        assert len(lines) == len(set(lines)), name
        assert set(lines) <= ids, name
        split[name] = set(lines)
    assert not split["train"] & split["val"]
    assert split["train"] | split["val"] == split["trainval"] == ids


def test_at_least_four_usable_objects() -> None:
    usable = 0
    for ident in _ids():
        label = np.asarray(Image.open(VOC / "SegmentationClass" / f"{ident}.png"))
        obj = (label > 0) & (label < 255)
        if obj.mean() > 0.02:
            usable += 1
    assert usable >= 4


def test_total_size_is_small() -> None:
    total = sum(p.stat().st_size for p in EMBEDDED.rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024
