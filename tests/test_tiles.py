"""Tile datasets (whole-image tiles with label maps) and the dense U-Net trained on them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from _trees import make_tree
from click.testing import CliRunner
from PIL import Image

from blursynth.cli import main as data_cli
from blursynth.errors import BlursynthError
from blursynth.patches import build_patch_dataset
from blursynth.preview import LEGEND_HEIGHT
from blursynth.schema import PatchParams, TileParams
from blursynth.shards import open_dataset, verify_dataset
from blursynth.sources import open_items
from blursynth.tiles import IGNORE, build_tile_dataset, tile_origins, tiles_at
from blursynth_train.cli import main as train_cli
from blursynth_train.models import UNet, UNetConfig
from blursynth_train.predict import Predictor


@pytest.mark.parametrize("length,size", [(10, 32), (32, 32), (33, 32), (100, 32), (640, 256)])
def test_tile_origins_cover_every_pixel_with_fewest_tiles(length, size):
    starts = tile_origins(length, size)
    covered = np.zeros(max(length, size), bool)
    for s in starts:
        covered[s : s + size] = True
        assert 0 <= s and (s + size <= length or length <= size)
    assert covered[:length].all() and len(starts) == max(1, -(-length // size))


@pytest.mark.parametrize("length,size", [(100, 32), (640, 256), (1100, 200)])
def test_jittered_origins_still_cover_every_pixel(length, size):
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(50):
        starts = tile_origins(length, size, rng)
        seen.add(tuple(starts))
        covered = np.zeros(length, bool)
        for s in starts:
            assert 0 <= s <= length - size
            covered[s : s + size] = True
        assert covered.all() and len(starts) == -(-length // size)
    assert len(seen) > 1 or len(starts) < 3  # the inner tiles move where there is slack


def test_tiles_per_image_adds_random_tiles_to_the_grid(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4, size=(40, 70))
    grid = TileParams(source="shi", root=str(root), tile_size=32, eval_images=2)
    more = TileParams(source="shi", root=str(root), tile_size=32, eval_images=2, tiles_per_image=9)
    build_tile_dataset(grid, tmp_path / "grid")
    build_tile_dataset(more, tmp_path / "more")
    with open_dataset(tmp_path / "grid") as a, open_dataset(tmp_path / "more") as b:
        assert len(a["train"]) == 6 * len(a.manifest.stems("train"))  # 2 x 3 grid
        assert len(b["train"]) == 9 * len(b.manifest.stems("train"))
    assert "--tiles-per-image 9" in (tmp_path / "more" / "README.md").read_text()


def _build(tmp_path, name="ds", jobs=1, **kw):
    root = make_tree(tmp_path / "src", motion=5, defocus=5, size=(40, 70))
    params = TileParams(
        source="shi", root=str(root), tile_size=32, eval_images=2, rows_per_shard=7, **kw
    )
    build_tile_dataset(params, tmp_path / name, jobs=jobs)
    return root, tmp_path / name


def test_tiles_cover_every_labelled_pixel_and_match_the_masks(tmp_path):
    root, out = _build(tmp_path, classes=3)
    verify_dataset(out).close()
    source, items = open_items("shi", root)
    with open_dataset(out) as ds:
        assert ds.kind == "tiles" and ds["train"].fields[:2] == ("image", "label")
        for split in ("train", "val"):
            rows = ds[split].read(0, len(ds[split]))
            for index in np.unique(rows["image_index"]):
                image, blur = source.load(items[index])
                want = blur.astype(np.uint8) * (1 if items[index].blur_type == "motion" else 2)
                seen = np.zeros(blur.shape, bool)
                for k in np.flatnonzero(rows["image_index"] == index):
                    y, x = rows["y"][k], rows["x"][k]
                    label = rows["label"][k]
                    h, w = min(32, blur.shape[0] - y), min(32, blur.shape[1] - x)
                    assert np.array_equal(label[:h, :w], want[y : y + h, x : x + w])
                    assert (label[h:, :] == IGNORE).all() and (label[:, w:] == IGNORE).all()
                    seen[y : y + h, x : x + w] = True
                assert seen.all()  # every pixel of every train/val image is in some tile


def test_tiles_hold_out_the_patch_datasets_images_and_ignore_jobs(tmp_path):
    root, one = _build(tmp_path, "one", jobs=1)
    _, two = _build(tmp_path, "two", jobs=2)
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir()) and len(names) > 5
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    patches = PatchParams(source="shi", root=str(root), per_image=5, eval_images=2)
    build_patch_dataset(patches, tmp_path / "patches")
    with open_dataset(one) as t, open_dataset(tmp_path / "patches") as p:
        assert t.manifest.images == p.manifest.images  # same eval/train/val per image


def test_a_tiles_rerun_reuses_whole_shards_and_rebuilds_a_damaged_one(tmp_path):
    """Shards written once: a rerun of the same plan keeps every shard whose bytes still hash
    to the recorded digest (untouched on disk), rebuilds a damaged one to the same bytes, and
    a build of other settings (--force) reuses none."""
    root, out = _build(tmp_path)
    shards = sorted(out.glob("*.h5"))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in shards}
    manifest = (out / "manifest.json").read_bytes()
    damaged = shards[1]
    raw = bytearray(damaged.read_bytes())
    raw[-50] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    params = TileParams(source="shi", root=str(root), tile_size=32, eval_images=2, rows_per_shard=7)
    report = build_tile_dataset(params, out)
    assert report.reused_shards == len(shards) - 1 and len(shards) > 3
    for p in shards:
        assert p.read_bytes() == before[p.name][0], p.name
        if p != damaged:
            assert p.stat().st_mtime_ns == before[p.name][1], p.name  # not rewritten
    assert (out / "manifest.json").read_bytes() == manifest
    verify_dataset(out).close()
    assert not list(out.glob("*.sha256"))  # the manifest holds the digests
    other = build_tile_dataset(replace(params, jitter=False), out, force=True)
    assert other.reused_shards == 0


def test_an_interrupted_tiles_build_keeps_its_finished_shards(tmp_path, monkeypatch):
    """Ctrl-C while shards are written: the finished ones (and their recorded digests) stay,
    and the rerun writes only the rest, to the bytes of an uninterrupted build."""
    import blursynth.build as build_module

    root, full = _build(tmp_path, "full")
    real = build_module.assemble_shard
    calls = []

    def stop_after_two(job):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(job)
        return real(job)

    monkeypatch.setattr(build_module, "assemble_shard", stop_after_two)
    params = TileParams(source="shi", root=str(root), tile_size=32, eval_images=2, rows_per_shard=7)
    with pytest.raises(KeyboardInterrupt):
        build_tile_dataset(params, tmp_path / "cut")
    assert not (tmp_path / "cut" / "manifest.json").exists()
    monkeypatch.setattr(build_module, "assemble_shard", real)
    report = build_tile_dataset(params, tmp_path / "cut")
    assert report.reused_shards == 2
    for p in sorted(full.iterdir()):
        assert (tmp_path / "cut" / p.name).read_bytes() == p.read_bytes(), p.name


def test_images_smaller_than_a_tile_are_padded_with_no_label(tmp_path):
    """(Images under 31 px are skipped, as ``patches`` skips them: the splits must agree.)"""
    root = make_tree(tmp_path / "src", motion=4, defocus=4, size=(34, 40))
    params = TileParams(source="shi", root=str(root), tile_size=48, eval_images=2)
    build_tile_dataset(params, tmp_path / "ds")
    with open_dataset(tmp_path / "ds") as ds:
        label = ds["train"].read(0, len(ds["train"]))["label"]
    assert (label[:, 34:, :] == IGNORE).all() and (label[:, :, 40:] == IGNORE).all()
    assert (label[:, :34, :40] != IGNORE).all()


def test_tiles_go_straight_into_the_given_rows_and_pad_small_images():
    rng = np.random.default_rng(0)
    planar = rng.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    labels = rng.integers(0, 2, (20, 30), dtype=np.uint8)
    ys, xs = np.array([0, 4, 4]), np.array([0, 10, 14])
    alone = tiles_at(planar, labels, 16, ys, xs)
    assert np.array_equal(alone["image"][1], planar[:, 4:20, 10:26])
    assert np.array_equal(alone["label"][2], labels[4:20, 14:30])
    out = {"image": np.zeros((5, 3, 16, 16), np.uint8), "label": np.zeros((5, 16, 16), np.uint8)}
    dest = np.array([4, 0, 2])
    assert tiles_at(planar, labels, 16, ys, xs, out, dest) is out
    for name in out:
        assert np.array_equal(out[name][dest], alone[name])
        assert not out[name][[1, 3]].any()
    padded = tiles_at(planar, labels, 24, np.array([0]), np.array([3]))  # 20 rows < 24
    assert (padded["label"][0, 20:] == IGNORE).all()
    assert np.array_equal(padded["image"][0, :, 20:], np.repeat(planar[:, 19:20, 3:27], 4, 1))


def test_hugging_face_loads_tile_shards(tmp_path):
    datasets = pytest.importorskip("datasets")
    _, out = _build(tmp_path)
    with open_dataset(out) as ds:
        files = [str(p) for p in ds["train"].shards]
        hf = datasets.load_dataset(
            "hdf5", data_files={"train": files}, cache_dir=str(tmp_path / "cache")
        )["train"]
        ours = ds["train"].read(0, len(ds["train"]))
    theirs = hf.with_format("numpy")[:]
    assert np.array_equal(theirs["label"], ours["label"])
    assert np.array_equal(theirs["image"], ours["image"])


def test_tiles_cli_and_three_classes_need_a_blur_type(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4, size=(40, 40))
    res = CliRunner().invoke(
        data_cli,
        [
            "tiles",
            "--source",
            "shi",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "ds"),
            "--tile-size",
            "32",
            "--eval-images",
            "2",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "tiles" in res.output
    assert "kind: tiles" in CliRunner().invoke(data_cli, ["info", str(tmp_path / "ds")]).output
    with pytest.raises(BlursynthError, match="needs a known blur type"):
        build_tile_dataset(
            TileParams(source="folder", root=str(root), classes=3, tile_size=32, eval_images=0),
            tmp_path / "bad",
        )


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (2, 3, 45, 71), (1, 3, 7, 9)])
def test_unet_takes_any_input_size(shape):
    model = UNet(UNetConfig(classes=3, width=4, depth=3)).eval()
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    assert model(x).shape == (shape[0], 3, *shape[2:])
    pred = Predictor(model)([x[0].permute(1, 2, 0).numpy()])[0]
    p = pred.prob
    assert p.shape == shape[2:] and float(p.min()) >= 0 and float(p.max()) <= 1
    assert pred.classes.shape == (3, *shape[2:])


def test_unet_tiled_inference_matches_whole_image_inference_far_from_seams():
    """The U-Net's receptive field is under the 64-px margin a window keeps: exact."""
    torch.manual_seed(0)
    model = UNet(UNetConfig(width=4, depth=2)).eval()
    image = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    whole = Predictor(model, tile=1024)([image])[0].prob
    tiled = Predictor(model, tile=256)([image])[0].prob
    assert np.abs(whole - tiled).max() < 1e-4


def test_fit_segment_and_evaluate_a_unet_end_to_end(tmp_path):
    root, out = _build(tmp_path)
    run = tmp_path / "run"
    res = CliRunner().invoke(
        train_cli,
        [
            "fit",
            str(out),
            "--arch",
            "unet",
            "--out",
            str(run),
            "--batch-size",
            "4",
            "--crop",
            "24",
            "--augment",
            "--photometric",
            "--iterations",
            "4",
            "--eval-every",
            "2",
            "--workers",
            "0",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    fit_config = json.loads((run / "config.json").read_text())["fit"]
    assert fit_config["photometric"] is True and fit_config["augment"] is True
    res = CliRunner().invoke(
        train_cli,
        [
            "segment",
            str(root / "image"),
            "--model",
            str(run / "best.pt"),
            "--out",
            str(tmp_path / "seg"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    mask = np.asarray(Image.open(tmp_path / "seg" / "motion0001_mask.png"))
    assert mask.shape == (40, 70)
    res = CliRunner().invoke(
        train_cli,
        [
            "evaluate",
            "--dataset",
            str(out),
            "--model",
            f"unet={run / 'best.pt'}",
            "--out",
            str(tmp_path / "ev"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    # the report's CNN does not train on tiles: a clear error, not a traceback
    res = CliRunner().invoke(train_cli, ["fit", str(out), "--out", str(tmp_path / "r2"), "-q"])
    assert res.exit_code == 1 and "trains on patches datasets, not tiles" in res.output


def test_three_class_model_writes_a_class_map_and_scores_blur_types(tmp_path):
    root, out = _build(tmp_path, classes=3)
    run = tmp_path / "run"
    args = [
        "fit",
        str(out),
        "--arch",
        "unet",
        "--out",
        str(run),
        "--batch-size",
        "4",
        "--iterations",
        "2",
        "--eval-every",
        "2",
        "--workers",
        "0",
        "--quiet",
    ]
    assert CliRunner().invoke(train_cli, args).exit_code == 0
    (root / "image" / "broken.png").write_bytes(b"not a png")  # one unreadable input
    res = CliRunner().invoke(
        train_cli,
        [
            "segment",
            str(root / "image"),
            "--model",
            str(run / "last.pt"),
            "--out",
            str(tmp_path / "seg"),
            "--postprocess",
            "none",
            "-q",
        ],
    )
    assert res.exit_code == 1 and "broken.png" in res.output and "Traceback" not in res.output
    assert "segmented 10 image(s)" in res.output  # the others were still segmented
    classes = np.asarray(Image.open(tmp_path / "seg" / "out_of_focus0001_classes.png"))
    assert classes.shape == (40 + LEGEND_HEIGHT, 70, 3)  # the image, then its legend
    (root / "image" / "broken.png").unlink()
    res = CliRunner().invoke(
        train_cli,
        [
            "evaluate",
            "--dataset",
            str(out),
            "--split",
            "val",
            "--model",
            f"u3={run / 'last.pt'}",
            "--out",
            str(tmp_path / "ev"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "blur-type acc." in res.output and "IoU pooled" in res.output

    summary = json.loads((tmp_path / "ev" / "results.json").read_text())["summary"]["u3"]["all"]
    assert 0 <= summary["type_accuracy"] <= 1 and "iou_motion" in summary
    assert 0 <= summary["iou_motion_pooled"] <= 1


def test_unet_resume_equals_an_uninterrupted_run(tmp_path):
    """Crop, augmentation (geometric and photometric) and BatchNorm all draw or keep state:
    --resume is still exact."""
    from blursynth_train.checkpoint import load_checkpoint
    from blursynth_train.fit import FitConfig, fit

    _, out = _build(tmp_path)
    kw = dict(
        datasets=str(out),
        model="unet",
        batch_size=4,
        crop=24,
        augment=True,
        photometric=True,
        optimizer="adamw",
        lr=1e-3,
        eval_every=3,
        val_rows=8,
        workers=0,
        quiet=True,
    )
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(FitConfig(out=str(tmp_path / "full"), iterations=6, **kw))
        fit(FitConfig(out=str(tmp_path / "half"), iterations=3, **kw))
        fit(FitConfig(out=str(tmp_path / "half"), iterations=6, resume=True, **kw))
    finally:
        torch.set_num_threads(n)
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model_state"]
    b = load_checkpoint(tmp_path / "half" / "last.pt")["model_state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_preview_of_a_tile_dataset_shows_tiles_beside_their_labels(tmp_path):
    _, out = _build(tmp_path)
    res = CliRunner().invoke(data_cli, ["preview", str(out), "--out", str(tmp_path / "t.png")])
    assert res.exit_code == 0, res.output
    sheet = np.asarray(Image.open(tmp_path / "t.png"))
    assert sheet.shape[1] == 4 * (2 * 32 + 12) and sheet.shape[2] == 3


def test_batched_dense_maps_equal_one_image_at_a_time():
    from blursynth_train.predict import model_maps

    torch.manual_seed(0)
    model = UNet(UNetConfig(classes=3, width=4, depth=2)).eval()
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, shape, dtype=np.uint8)
        for shape in ((40, 50, 3), (40, 50, 3), (33, 47, 3), (40, 50, 3))
    ]
    together = model_maps(model, images)
    for image, (prob, classes) in zip(images, together, strict=True):
        ((alone_prob, alone_classes),) = model_maps(model, [image])
        assert np.allclose(prob, alone_prob, atol=1e-5)
        assert np.allclose(classes, alone_classes, atol=1e-5)
        assert np.allclose(prob, 1 - classes[0], atol=1e-6)
