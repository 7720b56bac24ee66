"""Issue 25, the second hostile round: each case failed before its fix."""

from __future__ import annotations

import pytest
import torch
from _trees import make_patch_dataset
from click.testing import CliRunner

from blursynth_train import checkpoint
from blursynth_train.cli import main as train_cli
from blursynth_train.models import BlurNet, ModelConfig
from blursynth_train.weights import WEIGHTS_DIR, resolve_weights

TINY = ModelConfig(conv1_channels=4, conv2_channels=4, fc_units=8)


def _fit(ds, out, *extra):
    return CliRunner().invoke(
        train_cli,
        ["fit", str(ds), "--out", str(out), "--batch-size", "8", "--workers", "0", "-q", *extra],
    )


@pytest.mark.parametrize("lr", ["nan", "inf"])
def test_non_finite_options_are_refused(tmp_path, lr):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    res = _fit(ds, tmp_path / "run", "--lr", lr)
    assert res.exit_code == 2 and "lr must be a finite number" in res.output
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_diverging_run_stops_with_the_iteration_and_keeps_the_last_finite_checkpoint(tmp_path):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    run = tmp_path / "run"
    # lr 30 keeps the first two steps finite, then overflows the weights: the loss becomes nan
    res = _fit(ds, run, "--iterations", "2", "--eval-every", "2", "--lr", "30")
    assert res.exit_code == 0, res.output
    before = (run / "last.pt").read_bytes()
    res = _fit(ds, run, "--iterations", "40", "--resume", "--eval-every", "20")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "is not finite at iteration" in res.output and "still holds iteration 2" in res.output
    assert (run / "last.pt").read_bytes() == before  # nothing non-finite was saved
    model, _ = checkpoint.load_model(run / "best.pt")
    assert all(v.isfinite().all() for v in model.state_dict().values() if v.is_floating_point())


def test_export_refuses_a_non_finite_model_and_its_own_source(tmp_path):
    model = BlurNet(TINY)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    bad = checkpoint.save_checkpoint(tmp_path / "bad.pt", model)
    res = CliRunner().invoke(train_cli, ["export", str(bad), "--out", str(tmp_path / "x.pt")])
    assert res.exit_code == 1 and "non-finite weights" in res.output
    assert not (tmp_path / "x.pt").exists()
    good = checkpoint.save_checkpoint(tmp_path / "good.pt", BlurNet(TINY))
    data = good.read_bytes()
    res = CliRunner().invoke(train_cli, ["export", str(good), "--out", str(good)])
    assert res.exit_code == 1 and "overwrite its own source" in res.output
    assert good.read_bytes() == data


def test_a_file_named_like_shipped_weights_does_not_shadow_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report").write_bytes(b"someone's file")
    assert resolve_weights("report") == WEIGHTS_DIR / "blurnet-cuhk.pt"
    assert resolve_weights("./report").resolve() == (tmp_path / "report").resolve()


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG that declares width x height pixels and holds none: a decompression bomb's
    header (what a reader sees before it decodes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_skipped_and_listed_by_segment(tmp_path):
    from PIL import Image

    from blursynth_train.models import UNet, UNetConfig

    (tmp_path / "in").mkdir()
    Image.new("RGB", (40, 30), (90, 120, 30)).save(tmp_path / "in" / "ok.png")
    _png_header_only(tmp_path / "in" / "bomb.png", 15000, 15000)
    model = checkpoint.save_checkpoint(tmp_path / "m.pt", UNet(UNetConfig(width=4, depth=2)))
    res = CliRunner().invoke(
        train_cli,
        [
            "segment",
            str(tmp_path / "in"),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "o"),
            "-q",
        ],
    )
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "bomb.png" in res.output and "over the limit" in res.output
    assert (tmp_path / "o" / "ok_mask.png").is_file()


def test_the_pixel_limit_is_documented_and_can_be_raised(tmp_path, monkeypatch):
    from blursynth.errors import BlursynthError
    from blursynth.imageio import image_size, read_image_u8

    _png_header_only(tmp_path / "big.png", 15000, 15000)
    with pytest.raises(BlursynthError, match="BLURSYNTH_MAX_PIXELS"):
        read_image_u8(tmp_path / "big.png")
    monkeypatch.setenv("BLURSYNTH_MAX_PIXELS", str(15000 * 15000))
    assert image_size(tmp_path / "big.png") == (15000, 15000)
    monkeypatch.setenv("BLURSYNTH_MAX_PIXELS", "lots")
    with pytest.raises(BlursynthError, match="whole number"):
        image_size(tmp_path / "big.png")


def test_16_bit_and_float_images_are_scaled_by_their_range_not_clipped(tmp_path):
    import numpy as np
    from PIL import Image

    from blursynth.imageio import read_image_u8, read_mask_u8

    ramp = np.linspace(0, 65535, 256 * 64).astype(np.uint16).reshape(64, 256)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    got = read_image_u8(tmp_path / "ramp16.png")
    assert got.shape == (64, 256, 3)
    want = np.rint(ramp / 257.0).astype(np.uint8)
    assert np.array_equal(got[:, :, 0], want) and abs(got.mean() - 127.5) < 1
    floats = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    Image.fromarray(floats).save(tmp_path / "f.tif")
    assert abs(read_image_u8(tmp_path / "f.tif").mean() - 127.5) < 1
    assert read_mask_u8(tmp_path / "f.tif").max() == 255


def test_exif_orientation_turns_images_and_their_size_upright(tmp_path):
    import numpy as np
    from PIL import Image

    from blursynth.imageio import image_size, read_image_u8

    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :10] = 255  # a white band on the left of the stored pixels
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    im.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    got = read_image_u8(tmp_path / "turned.jpg")
    assert got.shape == (40, 20, 3) and image_size(tmp_path / "turned.jpg") == (20, 40)
    assert got[:10].mean() > 200 and got[-10:].mean() < 50  # the band is now on top


def test_segmenting_a_folder_into_itself_never_reads_its_own_outputs(tmp_path):
    from PIL import Image

    from blursynth_train.models import UNet, UNetConfig

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), (90, 120, 30)).save(folder / "0001.png")
    model = checkpoint.save_checkpoint(tmp_path / "m.pt", UNet(UNetConfig(width=4, depth=2)))
    for _ in range(2):
        res = CliRunner().invoke(
            train_cli, ["segment", str(folder), "--model", str(model), "--out", str(folder), "-q"]
        )
        assert res.exit_code == 0, res.output
        assert "segmented 1 image(s)" in res.output
    assert not list(folder.glob("*_mask_mask.png"))


def test_a_full_disk_names_the_file_and_says_the_disk_is_full(tmp_path, monkeypatch):
    """A write into an open file raises ENOSPC without a file name: the message used to
    say ``output: No space left on device``."""
    import errno
    import shutil
    from collections import namedtuple

    import numpy as np

    from blursynth.errors import BlursynthError
    from blursynth.imageio import write_png

    def full_disk(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("PIL.Image.Image.save", full_disk)
    with pytest.raises(BlursynthError) as info:
        write_png(tmp_path / "a" / "x.png", np.zeros((4, 4), np.uint8))
    assert str(info.value).startswith(str(tmp_path / "a" / "x.png"))
    assert "the disk is full" in str(info.value)
    assert not list((tmp_path / "a").iterdir())  # no temporary left behind
    # torch's own words for a full disk become the same sentence
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10, 10, 0))
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(BlursynthError, match=r"m\.pt: cannot write the checkpoint \(the disk is"):
        checkpoint.save_checkpoint(tmp_path / "m.pt", BlurNet(TINY))


@pytest.mark.parametrize(
    "option",
    [["--motion-length", "100000", "100001"], ["--defocus-sigma", "1", "inf"]],
)
def test_kernel_ranges_that_cannot_fit_an_image_are_refused_at_once(tmp_path, option):
    from blursynth.cli import main as data_cli

    res = CliRunner().invoke(
        data_cli, ["generate", "--n", "1", "--out", str(tmp_path / "g"), *option]
    )
    assert res.exit_code == 2 and "must be finite and at most" in res.output
    assert not (tmp_path / "g").exists()


def test_a_scheduler_that_is_not_an_address_is_one_line(tmp_path):
    pytest.importorskip("distributed")
    from blursynth.cli import main as data_cli

    res = CliRunner().invoke(
        data_cli,
        ["generate", "--n", "1", "--out", str(tmp_path / "g"), "--backend", "dask",
         "--scheduler", "not an address", "-q"],
    )  # fmt: skip
    assert res.exit_code == 1 and "cannot reach a dask scheduler at not an address" in res.output
    assert "Traceback" not in res.output


def test_more_dataloader_workers_than_cpus_are_refused(tmp_path):
    import os

    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    res = CliRunner().invoke(
        train_cli,
        ["fit", str(ds), "--out", str(tmp_path / "r"), "--workers", "500", "-q"],
    )
    assert res.exit_code == 2 and f"at most the {os.cpu_count()} CPUs" in res.output


def test_fit_refuses_a_shard_whose_bytes_differ_from_its_manifest(tmp_path):
    import h5py

    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    shard = sorted(ds.glob("train-*.h5"))[0]
    with h5py.File(shard, "r") as f:
        offset = f["patches"].id.get_offset()  # a byte of pixel data: every schema check passes
    raw = bytearray(shard.read_bytes())
    raw[offset + 100] ^= 0x01
    shard.write_bytes(bytes(raw))
    args = ("--iterations", "2", "--eval-every", "2")
    res = _fit(ds, tmp_path / "run", *args)
    assert res.exit_code == 1 and shard.name in res.output and "sha256 differs" in res.output
    assert "--no-verify" in res.output and not (tmp_path / "run" / "last.pt").exists()
    res = _fit(ds, tmp_path / "run", *args, "--no-verify")
    assert res.exit_code == 0, res.output


def test_preview_leaves_out_an_unreadable_sample_and_refuses_a_jpeg_name(tmp_path):
    from PIL import Image

    from blursynth.cli import main as data_cli

    out = tmp_path / "g"
    res = CliRunner().invoke(data_cli, ["generate", "--n", "2", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "(2 per model)" in res.output
    victim = sorted((out / "image").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated
    res = CliRunner().invoke(data_cli, ["preview", str(out), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert "left out of the sheet" in res.output and victim.name in res.output
    with Image.open(tmp_path / "s.png") as sheet:
        assert sheet.format == "PNG"
    res = CliRunner().invoke(data_cli, ["preview", str(out), "--out", str(tmp_path / "s.jpg")])
    assert res.exit_code == 2 and "name it NAME.png" in res.output
    assert not (tmp_path / "s.jpg").exists()


def test_ctrl_c_says_how_to_finish(tmp_path, monkeypatch):
    from blursynth import generate as gen
    from blursynth.cli import main as data_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "_render_all", interrupted)
    res = CliRunner().invoke(data_cli, ["generate", "--n", "2", "--out", str(tmp_path / "g")])
    assert res.exit_code == 130
    assert "Interrupted: run the same command with --resume to finish" in res.output


def test_export_takes_the_name_of_shipped_weights(tmp_path):
    res = CliRunner().invoke(train_cli, ["export", "report", "--out", str(tmp_path / "r.pt")])
    assert res.exit_code == 0, res.output
    model, _ = checkpoint.load_model(tmp_path / "r.pt")
    assert model.count_parameters() == 7_185_538


def _build(kind, root, out, *extra):
    from blursynth.cli import main as data_cli

    args = [kind, "--source", "shi", "--root", str(root), "--out", str(out), "--eval-images", "2"]
    if kind == "patches":
        args += ["--train-patches", "40", "--val-patches", "20"]
    else:
        args += ["--tile-size", "32"]
    return CliRunner().invoke(data_cli, [*args, "-q", *extra])


def test_a_build_never_replaces_another_dataset_or_a_users_files_without_force(tmp_path):
    from _trees import make_tree

    root = make_tree(tmp_path / "src", motion=3, defocus=3)
    out = tmp_path / "ds"
    assert _build("patches", root, out).exit_code == 0
    manifest = (out / "manifest.json").read_bytes()
    res = _build("tiles", root, out)  # another kind over a finished dataset
    assert res.exit_code == 1 and "holds a finished patches dataset" in res.output
    res = _build("patches", root, out, "--seed", "1")  # other settings
    assert res.exit_code == 1 and "other settings (seed)" in res.output
    assert (out / "manifest.json").read_bytes() == manifest  # untouched
    assert _build("patches", root, out).exit_code == 0  # the same build may redo itself
    assert _build("patches", root, out, "--seed", "1", "--force").exit_code == 0
    # a folder of someone's files
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    (mine / "train-00000-of-00001.h5").write_text("my file that looks like a shard")
    res = _build("tiles", root, mine)
    assert res.exit_code == 1 and "holds files that no build wrote (README.md)" in res.output
    assert (mine / "README.md").read_text() == "my notes"


def _tree_bytes(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in {"report.json", "run.json", ".lock", "sources.json"}
    }


def test_a_damaged_source_is_redrawn_not_failed_on_every_resume(tmp_path):
    """Issue 25 item 11: one truncated photograph used to fail the same samples on every
    --resume; its samples are now drawn again from another stream, whatever --jobs."""
    import json

    import numpy as np
    from _trees import make_voc
    from PIL import Image

    from blursynth import generate as gen
    from blursynth.cli import main as data_cli
    from blursynth.sampling import SampleRecord

    voc = make_voc(tmp_path / "v", sizes=[(48, 64)] * 3)
    jpeg = voc / "JPEGImages/img1.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size * 2 // 3])
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        args = ["generate", "--voc", str(voc), "--n", "6", "--out", str(out), "-j", jobs, "-q"]
        res = CliRunner().invoke(data_cli, args)
        assert res.exit_code == 0, res.output
        assert "12 of 12 images" in res.output and " redrawn, 0 failed" in res.output
        assert "redrawn: " in res.output and "img1.jpg" in res.output
        outs.append(out)
    report = json.loads((outs[0] / "report.json").read_text())
    assert report["failed"] == [] and report["written"] == 12
    assert report["redrawn"] and all("img1.jpg" in row["file"] for row in report["redrawn"])
    assert _tree_bytes(outs[0]) == _tree_bytes(outs[1])
    records = [json.loads(line) for line in (outs[0] / "records.jsonl").read_text().splitlines()]
    redrawn = [r for r in records if len(r["spawn_key"]) == 3]
    assert {r["name"] for r in redrawn} == {row["name"] for row in report["redrawn"]}
    assert all("img1" not in (r["fg"], r["bg"]) for r in redrawn)
    record = SampleRecord.from_dict(redrawn[0])
    arrays = gen.rerender(record, gen.scene_sources(voc, "train", (), 128, "object-white"))
    with Image.open(outs[0] / "image" / f"{record.name}.png") as written:
        assert (arrays["image"] == np.asarray(written)).all()


def test_records_are_listed_in_name_order_without_holding_the_names():
    from blursynth.sampling import names_in_order, sample_name

    models = ("motion", "defocus", "pan")
    names = [sample_name(m, i) for m in models for i in range(12345)]
    assert list(names_in_order(models, 12345)) == sorted(names)
    assert list(names_in_order(("mixed",), 3)) == ["mixed0001", "mixed0002", "mixed0003"]


def test_generate_n_a_billion_writes_at_once_in_flat_memory(tmp_path):
    """Issue 25 item 3: `generate --n 1000000000` planned every sample before writing one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "g"
    code = "from blursynth.cli import main; main()"
    args = [sys.executable, "-c", code, "generate", "--n", "1000000000", "--out", str(out), "-q"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "records").glob("*.json"))) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        with open(f"/proc/{proc.pid}/status") as f:
            rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        assert rss_kb < 600_000, f"{rss_kb / 1e3:.0f} MB"
    finally:
        os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130 and "--resume" in output
    assert not list(out.rglob("*.tmp-*"))


def test_own_backgrounds_with_no_sharp_scene_is_one_line(tmp_path):
    """Found while pinning generate's bytes: `--background own` with a sharpness no object
    photograph reaches ended in a ValueError traceback from the sampler."""
    from blursynth.cli import main as data_cli

    args = ["generate", "--n", "2", "--out", str(tmp_path / "g"), "--background", "own"]
    res = CliRunner().invoke(data_cli, [*args, "--min-background-sharpness", "0.01"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "--background own: no photograph with a usable object" in res.output
    assert "Traceback" not in res.output


def test_fit_reads_and_validates_large_rows_in_bounded_pieces(tmp_path):
    """Issue 25 item 12: a 1.3 GB tiles dataset's fit peaked at 7.3 GB of RAM: labels were
    checked and rows loaded 16,384 at a time (3.2 GB of 256-px tiles) and validation ran 512
    tiles per forward pass (a 4 GB activation). Measured after the fix on CUHK's tiles: 2.5 GB."""
    import numpy as np
    import torch

    from blursynth_train.data import BLOCK_BYTES, block_rows, eval_batch_size
    from blursynth_train.fit import EVAL_BATCH_SIZE, EVAL_PIXELS

    class Tiles:  # the reader's interface: rows of 256-px tiles and their label maps
        fields = ("image", "label")

        def __len__(self):
            return 100_000

        def read(self, start, stop, fields):
            shapes = {"image": (3, 256, 256), "label": (256, 256)}
            return {f: np.zeros((stop - start, *shapes[f]), np.uint8) for f in fields}

    rows = block_rows(Tiles(), ("image", "label"))
    assert rows * 4 * 256 * 256 <= BLOCK_BYTES and rows >= 1
    assert eval_batch_size(Tiles(), EVAL_PIXELS, EVAL_BATCH_SIZE) * 256 * 256 <= EVAL_PIXELS
    patches = (torch.zeros((10, 3, 31, 31), dtype=torch.uint8), torch.zeros(10))
    assert eval_batch_size(patches, EVAL_PIXELS, EVAL_BATCH_SIZE) == EVAL_BATCH_SIZE


def test_patches_warns_before_writing_near_duplicates():
    """Newcomer friction of issue 25: the default million training patches from cuhk-mini's
    dozen training images wrote 3.6 GB of near-duplicates without a word."""
    from types import SimpleNamespace

    from blursynth.patches import CROWDED_PATCHES, _crowding_warning

    def plan(rows, images):
        return SimpleNamespace(splits={"train": SimpleNamespace(rows=rows, images=range(images))})

    said = _crowding_warning(plan(1_000_000, 12))
    assert "83,333 per image" in said and "--train-patches" in said
    assert _crowding_warning(plan(1_000_000, 624)) is None  # the report's setting on CUHK
    assert _crowding_warning(plan(CROWDED_PATCHES * 3, 3)) is None


def test_fit_export_and_segment_raise_no_warnings(tmp_path):
    """Issue 25 item 13: torch UserWarnings (a non-writable array, the pickle protocol) were
    printed at users. Every warning is recorded here, so a new one fails."""
    import warnings

    import numpy as np
    from PIL import Image

    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    Image.fromarray(np.full((40, 56, 3), 90, np.uint8)).save(tmp_path / "photo.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _fit(ds, tmp_path / "run", "--iterations", "2", "--eval-every", "2")
        assert res.exit_code == 0, res.output
        out = str(tmp_path / "x.pt")
        res = CliRunner().invoke(train_cli, ["export", str(tmp_path / "run/best.pt"), "--out", out])
        assert res.exit_code == 0, res.output
        args = ["segment", str(tmp_path / "photo.png"), "--out", str(tmp_path / "seg"), "-q"]
        res = CliRunner().invoke(train_cli, args)
        assert res.exit_code == 0, res.output
    assert [str(w.message) for w in caught] == []


def test_a_crop_larger_than_the_tiles_is_refused(tmp_path):
    """Issue 25 item 13: `--crop` beyond the tile size trained on whole tiles without a word."""
    from _trees import make_tree

    root = make_tree(tmp_path / "src", motion=3, defocus=3)
    assert _build("tiles", root, tmp_path / "ds").exit_code == 0
    args = ["--arch", "unet", "--iterations", "2", "--eval-every", "2"]
    res = _fit(tmp_path / "ds", tmp_path / "run", *args, "--crop", "48")
    assert res.exit_code == 1 and "--crop 48 is larger than the dataset's 32-px tiles" in res.output
    assert not (tmp_path / "run" / "last.pt").exists()
    res = _fit(tmp_path / "ds", tmp_path / "run2", *args, "--crop", "32")
    assert res.exit_code == 0, res.output


def test_builds_say_when_they_pad_tiles_or_cap_per_image_quotas(tmp_path):
    """Issue 25 item 13: `--tile-size` beyond the images padded them, and `--per-image`
    beyond what an image holds was capped, both without a word."""
    from _trees import make_tree

    root = make_tree(tmp_path / "src", motion=3, defocus=3)  # 56 x 48 images
    res = _build("tiles", root, tmp_path / "t", "--tile-size", "64")
    assert res.exit_code == 0, res.output
    assert "6 image(s) are smaller than --tile-size 64 along an axis" in res.output
    res = _build("tiles", root, tmp_path / "t2")  # 32-px tiles: no padding, no warning
    assert res.exit_code == 0 and "smaller than --tile-size" not in res.output
    from blursynth.cli import main as data_cli

    args = ["patches", "--source", "shi", "--root", str(root), "--eval-images", "2", "-q"]
    res = CliRunner().invoke(data_cli, [*args, "--out", str(tmp_path / "p"), "--per-image", "5000"])
    assert res.exit_code == 0, res.output
    assert "4 image(s) hold fewer than --per-image 5000 patches" in res.output
    res = CliRunner().invoke(data_cli, [*args, "--out", str(tmp_path / "p2"), "--per-image", "4"])
    assert res.exit_code == 0 and "--per-image" not in res.output


def test_a_symlinked_source_root_is_recorded_as_named(tmp_path):
    """Issue 25 item 13: the recorded root went through resolved symlinks, so the same build
    named the machine's real folders (and differed with where the link pointed)."""
    import json

    from _trees import make_tree

    from blursynth.schema import published_root, resolve_root

    real = make_tree(tmp_path / "disk" / "cuhk", motion=3, defocus=3)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cuhk").symlink_to(real)
    out = tmp_path / "ds"
    assert _build("tiles", tmp_path / "data" / "cuhk", out).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["root"] == "../data/cuhk"
    assert resolve_root("../data/cuhk", out).resolve() == real.resolve()
    # a symlinked dataset folder: its '..' is the real parent's, so the path goes that way
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "ds").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    recorded = published_root(real, tmp_path / "links" / "ds")
    assert resolve_root(recorded, tmp_path / "links" / "ds").resolve() == real.resolve()


def test_the_default_eval_images_shrink_to_a_small_source(tmp_path):
    """Newcomer friction of issue 25: `tiles`/`patches` on cuhk-mini failed with the default
    --eval-images 20; an explicit value that does not fit is still refused."""
    import json

    from _trees import make_tree

    from blursynth.cli import main as data_cli

    root = make_tree(tmp_path / "src", motion=4, defocus=5)
    args = ["tiles", "--source", "shi", "--root", str(root), "--tile-size", "32", "-q"]
    res = CliRunner().invoke(data_cli, [*args, "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert "the default --eval-images 20 leaves too few images to train on" in res.output
    assert json.loads((tmp_path / "t/manifest.json").read_text())["params"]["eval_images"] == 4
    res = CliRunner().invoke(data_cli, [*args, "--out", str(tmp_path / "u"), "--eval-images", "9"])
    assert res.exit_code == 1 and "lower --eval-images (at most" in res.output


def test_class_pictures_and_the_tile_preview_carry_a_legend(tmp_path):
    """Newcomer friction of issue 25: STEM_classes.png and the tile preview showed colours
    with no word of what they mean."""
    import numpy as np
    from _trees import make_tree
    from PIL import Image

    from blursynth.cli import main as data_cli
    from blursynth.patch_preview import TILE_COLOURS
    from blursynth.preview import LEGEND_HEIGHT, with_legend
    from blursynth_train.segment import CLASS_LEGEND

    picture = with_legend(np.zeros((30, 300, 3), np.uint8), CLASS_LEGEND)
    band = picture[30:]
    assert band.shape == (LEGEND_HEIGHT, 300, 3)
    for _, colour in CLASS_LEGEND:  # a swatch of every class
        assert (band == colour).all(axis=2).sum() >= 100
    assert (band == 0).all(axis=2).any()  # and black text
    root = make_tree(tmp_path / "src", motion=3, defocus=3)
    assert _build("tiles", root, tmp_path / "t").exit_code == 0
    res = CliRunner().invoke(
        data_cli, ["preview", str(tmp_path / "t"), "--out", str(tmp_path / "p.png")]
    )
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "p.png") as sheet:
        band = np.asarray(sheet.convert("RGB"))[-LEGEND_HEIGHT:]
    for colour in TILE_COLOURS[:2].astype(np.uint8):  # sharp and blurred
        assert (band == colour).all(axis=2).sum() >= 100
