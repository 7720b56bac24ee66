"""The VOC reader on VOCdevkit trees built here (palette masks, void borders) and on real VOC."""

from __future__ import annotations

import numpy as np
import pytest
from _trees import make_voc, object_labels, write_palette_png
from PIL import Image

from blursynth.errors import BlursynthError
from blursynth.sources.voc import (
    VOCSegmentation,
    fill_void,
    object_mask,
    resolve_voc_root,
    usable_classes,
)


@pytest.fixture
def voc(tmp_path):
    return make_voc(tmp_path / "TrainVal")


def test_three_accepted_roots(voc):
    for root in (voc, voc.parent, voc.parent.parent):
        assert resolve_voc_root(root) == voc


def test_wrong_or_missing_root(tmp_path):
    with pytest.raises(BlursynthError, match="VOC folder not found"):
        resolve_voc_root(tmp_path / "nope")
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(BlursynthError, match="not a PASCAL VOC folder") as info:
        VOCSegmentation(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_split_list_and_bad_split(voc):
    assert VOCSegmentation(voc, "val").ids == ["img0", "img1", "img2", "img3"]
    with pytest.raises(BlursynthError, match="split must be"):
        VOCSegmentation(voc, "test")
    (voc / "ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(BlursynthError, match="split list not found") as info:
        VOCSegmentation(voc, "val")
    assert "val.txt" in str(info.value)


def test_palette_indices_kept_and_void_filled(voc):
    ds = VOCSegmentation(voc)
    with Image.open(ds.mask_path("img2")) as im:
        assert im.mode == "P"
        raw = np.asarray(im)
    assert set(np.unique(raw)) == {0, 3, 255}
    image, labels = ds.load("img2")
    assert image.dtype == np.float32 and image.shape == (56, 56, 3)
    assert 0 <= image.min() and image.max() <= 1
    assert set(np.unique(labels)) == {0, 3}  # void never survives


def test_void_policy_nearest_non_void_label():
    """Void pixels take the label of the nearest non-void pixel: the boundary splits the band."""
    row = np.array([0, 0, 255, 255, 255, 255, 3, 3, 255, 255, 5, 5], np.uint8)
    filled = fill_void(np.tile(row, (4, 1)))
    assert filled[0].tolist() == [0, 0, 0, 0, 3, 3, 3, 3, 3, 5, 5, 5]
    m = object_mask(np.tile(row, (4, 1)), 3)
    assert m.dtype == np.float32 and set(np.unique(m)) == {0.0, 1.0}
    assert m[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    assert not fill_void(np.full((3, 3), 255, np.uint8)).any()


def test_void_band_recovers_the_drawn_object():
    # a 2-px void band on each side of the true border of the box (20:44, 10:30)
    labels = object_labels(64, 48, 7, (20, 10, 44, 30), void=2)
    truth = np.zeros((64, 48), np.float32)
    truth[20:44, 10:30] = 1
    assert np.array_equal(object_mask(labels, 7), truth)


def test_usable_classes_threshold_and_boxes():
    labels = np.zeros((100, 100), np.uint8)
    labels[10:20, 30:40] = 4  # 1 %: too small
    labels[50:80, 5:25] = 9  # 6 %
    labels[0:1, 0:2] = 255
    assert usable_classes(labels) == {9: (50, 5, 80, 25)}
    assert usable_classes(labels, min_fraction=0.005) == {4: (10, 30, 20, 40), 9: (50, 5, 80, 25)}


def test_scan_one_reports_bad_items(voc):
    ds = VOCSegmentation(voc)
    item = ds.scan_one("img1")
    assert (item.height, item.width) == (64, 48) and list(item.classes) == [2]
    ds.image_path("img0").unlink()
    with pytest.raises(BlursynthError, match="image listed in the split is missing") as info:
        ds.scan_one("img0")
    assert "img0.jpg" in str(info.value)
    ds.mask_path("img1").unlink()
    with pytest.raises(BlursynthError, match="mask listed in the split is missing"):
        ds.scan_one("img1")
    ds.image_path("img2").write_bytes(b"not a jpeg at all")
    with pytest.raises(BlursynthError, match="cannot read image") as info:
        ds.scan_one("img2")
    assert "img2.jpg" in str(info.value)
    write_palette_png(ds.mask_path("img3"), np.zeros((10, 10), np.uint8))
    with pytest.raises(BlursynthError, match="mask is 10x10 but its image is 72x60"):
        ds.scan_one("img3")


def test_rgb_mask_is_refused(voc):
    ds = VOCSegmentation(voc)
    Image.new("RGB", (48, 64)).save(ds.mask_path("img1"))
    with pytest.raises(BlursynthError, match="expected a palette") as info:
        ds.scan_one("img1")
    assert "img1.png" in str(info.value)


@pytest.mark.realdata
def test_real_voc_sample(voc_sample):
    ds = VOCSegmentation(voc_sample, "trainval")
    assert len(ds.ids) == 14
    for image_id in ds.ids:
        item = ds.scan_one(image_id)
        assert item.classes, f"{image_id} has no usable class"
    image, labels = ds.load(ds.ids[0])
    assert labels.shape == image.shape[:2] and 255 not in labels
