"""Patch sampling and balancing: pure helpers, split and balance invariants, real data."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
from _trees import check_rows, make_tree
from PIL import Image

from blursynth.errors import BlursynthError
from blursynth.patch_plan import cell_map, waterfill
from blursynth.patches import build_patch_dataset, cut_patches, extract_patches
from blursynth.schema import PatchParams
from blursynth.shards import open_dataset
from blursynth.sources import open_dataset_images


def _params(root, **kw):
    kw.setdefault("train_patches", 1200)
    kw.setdefault("eval_images", 2)
    kw.setdefault("rows_per_shard", 500)
    kw.setdefault("source", "shi")
    kw.setdefault("patch_size", 9)  # the toy images are 48x56
    return PatchParams(root=str(root), **kw)


def test_cell_map_matches_direct_window_count():
    rng = np.random.default_rng(1)
    blur = np.zeros((23, 29), dtype=bool)
    blur[5:17, 3:20] = True
    blur[rng.random(blur.shape) < 0.02] ^= True
    p = 7
    got = cell_map(blur, p)
    padded = np.pad(blur, p // 2, mode="reflect")
    for y in range(blur.shape[0]):
        for x in range(blur.shape[1]):
            s = padded[y : y + p, x : x + p].sum()
            want = 0 if s == 0 else 1 if s == p * p else 2 + int(blur[y, x])
            assert got[y, x] == want, (y, x)


def test_extract_patches_is_the_reflect_padded_crop_in_nchw():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(12, 15, 3), dtype=np.uint8)
    cy, cx = np.array([0, 11, 5]), np.array([0, 14, 7])
    patches = extract_patches(image, cy, cx, 5)
    assert patches.shape == (3, 3, 5, 5) and patches.dtype == np.uint8
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="reflect")
    for k in range(3):
        crop = padded[cy[k] : cy[k] + 5, cx[k] : cx[k] + 5]
        assert np.array_equal(patches[k], crop.transpose(2, 0, 1))
    # the centre pixel of a patch is the image pixel
    assert np.array_equal(patches[2][:, 2, 2], image[5, 7])


@pytest.mark.parametrize("p", [3, 5, 9])
def test_patches_at_every_centre_are_the_reflect_padded_crops(p):
    """Windows of the image inside, the reflection near every edge and corner (cut_patches
    takes the two paths; the answer must not depend on which)."""
    image = np.random.default_rng(p).integers(0, 256, size=(11, 13, 3), dtype=np.uint8)
    cy, cx = (a.ravel() for a in np.mgrid[0:11, 0:13])
    padded = np.pad(image, ((p // 2,) * 2, (p // 2,) * 2, (0, 0)), mode="reflect")
    crops = [padded[y : y + p, x : x + p] for y, x in zip(cy, cx, strict=True)]
    want = np.stack(crops).transpose(0, 3, 1, 2)
    assert np.array_equal(extract_patches(image, cy, cx, p), want)
    planar = np.ascontiguousarray(image.transpose(2, 0, 1))
    order = np.random.default_rng(0).permutation(len(cy))  # any order, mixed inner / border
    assert np.array_equal(cut_patches(planar, cy[order], cx[order], p), want[order])
    # straight into rows of a larger buffer (a shard's): only those rows change
    buffer = np.full((len(cy) + 5, 3, p, p), 7, np.uint8)
    dest = np.random.default_rng(1).permutation(len(buffer))[: len(cy)]
    assert cut_patches(planar, cy, cx, p, buffer, dest) is buffer
    assert np.array_equal(buffer[dest], want)
    untouched = np.setdiff1d(np.arange(len(buffer)), dest)
    assert (buffer[untouched] == 7).all()
    with pytest.raises(ValueError, match="C-contiguous"):
        strided = np.zeros((2 * len(cy), 3, p, p), np.uint8)[::2]
        cut_patches(planar, cy, cx, p, strided, np.arange(len(cy)))


@pytest.mark.parametrize(
    "total,caps",
    [(10, [5, 5, 5]), (10, [1, 100, 100]), (7, [0, 3, 3]), (100, [2, 3, 4]), (0, [3, 3])],
)
def test_waterfill_is_even_and_capped(total, caps):
    alloc = waterfill(total, caps)
    caps = np.array(caps)
    assert alloc.sum() == min(total, caps.sum())
    assert (alloc <= caps).all() and (alloc >= 0).all()
    uncapped = alloc[alloc < caps]
    if uncapped.size:  # anyone not at their cap got at least as much as anyone else - 1
        assert uncapped.min() >= alloc.max() - 1


@pytest.mark.parametrize(
    "value,message",
    [
        ({"patch_size": 30}, "odd"),
        ({"train_patches": -1}, ">= 0"),
        ({"per_image": 0}, ">= 1"),
        ({"format": "zarr"}, "format"),
        ({"format": "caffe", "rows_per_shard": 10**6, "patch_size": 31}, "2 GB"),
        ({"seed": -1}, "--seed must be >= 0"),  # SeedSequence would fail later, with a traceback
    ],
)
def test_params_are_validated_with_the_value(tmp_path, value, message):
    with pytest.raises(BlursynthError, match=message):
        _params(tmp_path, **value)


def test_splits_balance_and_rows_match_the_source(tmp_path):
    root = make_tree(tmp_path / "src", motion=7, defocus=7)
    report = build_patch_dataset(_params(root, eval_images=4), tmp_path / "ds", jobs=1)
    assert report.rows == {"train": 1200, "val": 300}
    seen = check_rows(tmp_path / "ds")
    eval_stems = {e["stem"] for e in json.loads((tmp_path / "ds/eval.json").read_text())["items"]}
    with open_dataset(tmp_path / "ds") as ds:
        images = ds.manifest.images
        # no image in two splits; the eval images are in none; 2 eval per blur type
        assert not seen["train"] & seen["val"]
        assert not {images[i].stem for i in seen["train"] | seen["val"]} & eval_stems
        assert collections.Counter(
            images[i].blur_type for i in range(len(images)) if images[i].stem in eval_stems
        ) == {"motion": 2, "defocus": 2}
        # 5 left per type: 4 train, 1 val
        per_split = collections.Counter((im.split, im.blur_type) for im in images)
        assert per_split[("train", "motion")] == 4 and per_split[("val", "defocus")] == 1
        # balance: equal blur types, thirds by category, labels 50/50 (within rounding)
        for split in ds.splits:
            rows = ds[split].read(0, len(ds[split]), fields=("label", "category", "blur_type"))
            n = len(rows["label"])
            assert abs(np.bincount(rows["blur_type"], minlength=2)[:2] - n / 2).max() <= 1
            assert abs(np.bincount(rows["category"], minlength=3) - n / 3).max() <= 2
            assert abs(rows["label"].mean() - 0.5) <= 2 / n
        # the manifest's counts are what the shards hold
        table = {
            (c["split"], c["blur_type"], c["category"], c["label"]): c["count"]
            for c in ds.manifest.counts
        }
        assert sum(v for k, v in table.items() if k[0] == "train") == 1200
        assert table[("train", "motion", "mixed", 1)] == 100


def test_per_image_gives_every_train_and_val_image_k_patches(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    build_patch_dataset(_params(root, per_image=30, eval_images=0), tmp_path / "ds")
    with open_dataset(tmp_path / "ds") as ds:
        for split in ds.splits:
            idx = ds[split].read(0, len(ds[split]), fields=("image_index",))["image_index"]
            assert set(np.bincount(idx)[np.unique(idx)]) == {30}
        assert len(ds["train"]) + len(ds["val"]) == 8 * 30


def test_image_without_blurred_pixels_still_gives_sharp_patches(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    Image.fromarray(np.zeros((48, 56), np.uint8)).save(root / "gt" / "motion0001.png")
    build_patch_dataset(_params(root, per_image=12, eval_images=0), tmp_path / "ds")
    with open_dataset(tmp_path / "ds") as ds:
        index = [im.stem for im in ds.manifest.images].index("motion0001")
        split = ds.manifest.images[index].split
        rows = ds[split].read(0, len(ds[split]))
        sel = rows["image_index"] == index
        assert sel.sum() == 12 and (rows["category"][sel] == 0).all()
        assert (rows["label"][sel] == 0).all()


def test_folder_source_with_one_blur_type(tmp_path):
    root = make_tree(
        tmp_path / "src", motion=3, defocus=3, prefix=("a", "b"), white_is_blurred=False
    )
    for blur_type, code in ((None, 2), ("defocus", 1)):
        out = tmp_path / f"ds-{blur_type}"
        params = _params(
            root,
            source="folder",
            polarity="sharp-white",
            eval_images=2,
            blur_type=blur_type,
            train_patches=300,
        )
        build_patch_dataset(params, out)
        check_rows(out)  # labels follow the polarity
        with open_dataset(out) as ds:
            rows = ds["train"].read(0, len(ds["train"]))
            assert len(rows["label"]) == 300 and (rows["blur_type"] == code).all()
            assert abs(rows["label"].mean() - 0.5) < 0.01
            _, items = open_dataset_images(out)
            assert len(items) == 2
            assert {it.blur_type for it in items} == {blur_type or "unknown"}


def test_too_few_images_for_the_eval_holdout_is_a_clear_error(tmp_path):
    root = make_tree(tmp_path / "src", motion=3, defocus=3)
    with pytest.raises(BlursynthError, match="lower --eval-images"):
        build_patch_dataset(_params(root, eval_images=4), tmp_path / "ds")


@pytest.mark.realdata
def test_real_cuhk_mini_dataset(cuhk_mini, tmp_path):
    params = PatchParams(
        source="shi",
        root=str(cuhk_mini),
        train_patches=2000,
        val_patches=500,
        eval_images=4,
        rows_per_shard=1000,
    )
    build_patch_dataset(params, tmp_path / "ds", jobs=2)
    seen = check_rows(tmp_path / "ds")
    assert not seen["train"] & seen["val"]
    with open_dataset(tmp_path / "ds") as ds:
        rows = ds["train"].read(0, len(ds["train"]), fields=("label", "category", "blur_type"))
        assert len(rows["label"]) == 2000
        assert np.bincount(rows["blur_type"]).tolist() == [1000, 1000]
        assert abs(rows["label"].mean() - 0.5) < 0.01
        source, items = open_dataset_images(tmp_path / "ds")
        assert len(items) == 4 and {it.blur_type for it in items} == {"motion", "defocus"}


@pytest.mark.realdata
def test_real_dut_sample_sharp_white(dut_sample, tmp_path):
    params = PatchParams(
        source="folder",
        root=str(dut_sample),
        polarity="sharp-white",
        threshold=128,
        blur_type="defocus",
        per_image=40,
        eval_images=1,
    )
    build_patch_dataset(params, tmp_path / "ds")
    check_rows(tmp_path / "ds")


@pytest.mark.realdata
def test_only_keeps_the_image_split_of_the_full_dataset(tmp_path, cuhk_mini):
    """``--only motion`` keeps motion train/val images and the same held-out eval images."""
    common = dict(
        source="shi", root=str(cuhk_mini), train_patches=300, val_patches=100, eval_images=4, seed=3
    )
    build_patch_dataset(PatchParams(**common), tmp_path / "both", quiet=True)
    build_patch_dataset(PatchParams(**common, only="motion"), tmp_path / "motion", quiet=True)
    with open_dataset(tmp_path / "both") as both, open_dataset(tmp_path / "motion") as motion:
        assert both.manifest.eval_images == motion.manifest.eval_images
        for split in ("train", "val"):
            rows = motion[split].read(0, len(motion[split]), fields=("blur_type",))
            assert set(rows["blur_type"].tolist()) == {0}  # motion only
            assert len(motion[split]) == {"train": 300, "val": 100}[split]
        where = {im.stem: im.split for im in both.manifest.images}
        for im in motion.manifest.images:
            if im.blur_type == "motion":
                assert im.split == where[im.stem]
