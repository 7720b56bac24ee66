"""Each image decoded once per build: the cache, the uint8 path, the light pickle."""

from __future__ import annotations

import pickle

import numpy as np
from _trees import make_tree

from blursynth.decoded import DecodedCache, decoded_cache, remove_cache
from blursynth.imageio import to_u8
from blursynth.patch_plan import cell_map
from blursynth.sources import open_items


def test_the_cache_gives_back_the_decoded_image_planar_and_its_cells(tmp_path):
    root = make_tree(tmp_path / "src", motion=2, defocus=2, size=(40, 50))
    source, items = open_items("shi", str(root))
    cache = decoded_cache(tmp_path / "ds")
    for k, item in enumerate(items):
        cells = cache.store(source, item, k, 7)
        image, blur = source.load(item)
        assert np.array_equal(cells, cell_map(blur, 7))
        assert np.array_equal(cache.cells(k), cells)
        assert np.array_equal(cache.planar(k), to_u8(image).transpose(2, 0, 1))
        assert np.array_equal(cells & 1, blur)  # the low bit is the blur mask
    remove_cache(cache)
    assert not (tmp_path / "ds" / ".decoded").exists()


def test_load_u8_is_load_without_the_float_round_trip(tmp_path):
    root = make_tree(tmp_path / "src", motion=1, defocus=1, size=(30, 31))
    source, items = open_items("shi", str(root))
    assert len(items) == 2
    for item in items:
        image_u8, blur_u8 = source.load_u8(item)
        image, blur = source.load(item)
        assert image_u8.dtype == np.uint8 and np.array_equal(to_u8(image), image_u8)
        assert np.array_equal(blur_u8, blur)


def test_a_source_pickles_without_its_item_list_and_still_loads(tmp_path):
    """It travels with every task: its list of items stays behind."""
    root = make_tree(tmp_path / "src", motion=30, defocus=30, size=(32, 32))
    source, items = open_items("shi", str(root))
    light = pickle.loads(pickle.dumps(source))
    assert len(pickle.dumps(source)) < 1000 and len(source) == 60 and light.items == []
    for a, b in zip(light.load(items[3]), source.load(items[3]), strict=True):
        assert np.array_equal(a, b)


def test_a_cache_without_a_folder_keeps_nothing(tmp_path):
    root = make_tree(tmp_path / "src", motion=1, defocus=1, size=(30, 30))
    source, items = open_items("shi", str(root))
    cells = DecodedCache(None).store(source, items[0], 0, 5)
    assert cells.shape == (30, 30) and not list(tmp_path.glob("**/*.npy"))


def test_a_killed_builds_decoded_images_are_removed_by_the_next_run(tmp_path):
    """A build killed mid-way leaves .decoded/ (and no finished-looking file); the rerun
    replaces it and leaves nothing temporary behind."""
    from blursynth.patches import build_patch_dataset
    from blursynth.schema import PatchParams

    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    params = PatchParams(source="shi", root=str(root), train_patches=400, eval_images=2)
    build_patch_dataset(params, tmp_path / "ref")
    out = tmp_path / "ds"
    (out / ".decoded").mkdir(parents=True)
    (out / ".decoded" / "0000003.npy").write_bytes(b"half an image from a killed run")
    build_patch_dataset(params, out)
    assert not (out / ".decoded").exists()
    assert (out / "SHA256SUMS").read_text() == (tmp_path / "ref" / "SHA256SUMS").read_text()


def test_the_cache_keeps_a_mixed_images_classes_only_when_asked(tmp_path):
    """One file per image: the planar pixels and a packed truth plane (cells, and the
    per-pixel blur types of a mixed synthetic image when the cache keeps them)."""
    from blursynth.decoded import cells_of, classes_of

    root = make_tree(tmp_path / "src", motion=1, defocus=1, size=(40, 50))
    source, items = open_items("shi", str(root))
    per_pixel = np.zeros((40, 50), np.uint8)
    per_pixel[:, 10:30], per_pixel[:, 30:] = 1, 2
    source.load_classes = lambda item: per_pixel  # as a synth source's mixed image
    for keep in (False, True):
        cache = decoded_cache(tmp_path / f"ds-{keep}", classes=keep)
        cells = cache.store(source, items[0], 0, 7)
        assert [p.name for p in cache.folder.iterdir()] == ["0000000.npy"]
        kept = cache.load(0)
        assert kept.shape == (4, 40, 50) and np.array_equal(cells_of(kept[3]), cells)
        assert np.array_equal(cache.cells(0), cells)
        got = classes_of(cache.truth(0))
        assert (got is None) if not keep else np.array_equal(got, per_pixel)
