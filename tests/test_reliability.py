"""Bad outputs, concurrent runs and interrupted writes: one line, nothing mixed, nothing lost.

Each test here was a failure found by trying the commands as a hostile new user would
(issue 12); the README's reliability table is kept true by them.
"""

from __future__ import annotations

import errno
import multiprocessing
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from _trees import make_patch_dataset, make_tree
from click.testing import CliRunner

from blursynth.cli import main as data_cli
from blursynth.errors import BlursynthError
from blursynth.locking import LOCK_NAME, folder_lock
from blursynth_train.cli import main as train_cli


def _blocked(tmp_path) -> Path:
    """An output path that cannot be created: its parent is a regular file."""
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "out"


def _one_line_error(res, path) -> None:
    assert res.exit_code != 0
    assert "Traceback" not in res.output and str(path).split("/")[-2] in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_unwritable_output_is_one_line_in_every_command(tmp_path):
    tree = make_tree(tmp_path / "src", motion=3, defocus=3)
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    bad = _blocked(tmp_path)
    runs = [
        (data_cli, ["generate", "--n", "1", "--out", str(bad), "-q"]),
        (
            data_cli,
            [
                "patches",
                "--source",
                "shi",
                "--root",
                str(tree),
                "--out",
                str(bad),
                "--train-patches",
                "40",
                "--eval-images",
                "2",
                "-q",
            ],
        ),
        (
            data_cli,
            [
                "tiles",
                "--source",
                "shi",
                "--root",
                str(tree),
                "--out",
                str(bad),
                "--tile-size",
                "32",
                "--eval-images",
                "2",
                "-q",
            ],
        ),
        (data_cli, ["preview", str(ds), "--out", str(bad / "x.png")]),
        (train_cli, ["fit", str(ds), "--out", str(bad), "--iterations", "1", "-q"]),
        (train_cli, ["segment", str(tree / "image"), "--out", str(bad), "-q"]),
        (
            train_cli,
            [
                "evaluate",
                "--source",
                "shi",
                "--root",
                str(tree),
                "--baseline",
                "su",
                "--out",
                str(bad),
                "-q",
            ],
        ),
    ]
    for cli, args in runs:
        res = CliRunner().invoke(cli, args)
        _one_line_error(res, bad)


def test_a_full_disk_during_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    import torch

    from blursynth_train.checkpoint import save_checkpoint
    from blursynth_train.models import BlurNet, ModelConfig

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(BlursynthError, match="m.pt: cannot write the checkpoint"):
        save_checkpoint(
            tmp_path / "m.pt", BlurNet(ModelConfig(conv1_channels=2, conv2_channels=2, fc_units=2))
        )
    assert list(tmp_path.iterdir()) == []  # no half-written file


def test_a_full_disk_while_writing_is_one_line(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "src", motion=3, defocus=3)
    import blursynth.imageio as imageio

    def no_space(path, array, level=6):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("blursynth_train.segment.write_png", no_space)
    res = CliRunner().invoke(
        train_cli,
        [
            "segment",
            str(tree / "image"),
            "--model",
            "report",
            "--out",
            str(tmp_path / "o"),
            "--stride",
            "4",
            "-q",
        ],
    )
    assert res.exit_code == 1 and "No space left on device" in res.output
    assert "Traceback" not in res.output
    assert imageio  # the module stays importable after the patch


def _hold(folder, seconds, ready):
    with folder_lock(folder, "test"):
        ready.set()
        time.sleep(seconds)


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path / "out", 30, ready))
    holder.start()
    try:
        assert ready.wait(10)
        res = CliRunner().invoke(
            data_cli, ["generate", "--n", "1", "--out", str(tmp_path / "out"), "-q"]
        )
        assert res.exit_code == 1 and "another run is writing into this folder" in res.output
        ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
        res = CliRunner().invoke(
            train_cli, ["fit", str(ds), "--out", str(tmp_path / "out"), "--iterations", "1", "-q"]
        )
        assert res.exit_code == 1 and "another run" in res.output
    finally:
        holder.kill()  # like kill -9: the kernel drops the lock
        holder.join()
    assert (tmp_path / "out" / LOCK_NAME).exists()  # the killed run's file is left...
    with folder_lock(tmp_path / "out", "test"):  # ...and does not block the next run
        pass
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_resume_before_any_checkpoint_says_what_to_do(tmp_path):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")  # killed before the first checkpoint
    (tmp_path / "run" / "best.pt.tmp-123").write_bytes(b"")
    res = CliRunner().invoke(
        train_cli, ["fit", str(ds), "--out", str(tmp_path / "run"), "--resume", "-q"]
    )
    assert res.exit_code == 1 and "without --resume" in res.output
    res = CliRunner().invoke(
        train_cli,
        [
            "fit",
            str(ds),
            "--out",
            str(tmp_path / "run"),
            "--iterations",
            "2",
            "--eval-every",
            "2",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert not list((tmp_path / "run").glob("*.tmp-*"))  # the 0-byte leftover is gone


def test_verify_reports_damaged_hdf5_metadata_without_a_traceback(tmp_path):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32, rows_per_shard=100)
    import json

    from blursynth.shards import open_dataset, sha256_file, verify_dataset
    from blursynth.shards.writer import write_checksums

    shard = sorted(ds.glob("train-*.h5"))[0]
    with h5py.File(shard, "r") as f:
        data_offset = f["patches"].id.get_offset()
    raw = bytearray(shard.read_bytes())
    with open_dataset(ds) as d:
        want = d["train"].read(0, 64, fields=("patches", "label"))
    # flip single bytes across the metadata before the data: each is either reported,
    # naming the shard, or inert (every row still reads back as it was written)
    reported = 0
    for pos in range(0, min(data_offset, 4000), 97):
        damaged = bytearray(raw)
        damaged[pos] ^= 0xFF
        shard.write_bytes(bytes(damaged))
        manifest = json.loads((ds / "manifest.json").read_text())
        manifest["splits"]["train"]["shards"][0]["sha256"] = sha256_file(shard)
        (ds / "manifest.json").write_text(json.dumps(manifest))
        # the checksums agree with the damaged bytes: only the HDF5 structure can tell
        write_checksums(ds, sorted(p.name for p in ds.iterdir() if p.name != "SHA256SUMS"))
        try:
            verify_dataset(ds).close()
        except BlursynthError as exc:
            assert shard.name in str(exc) and "Traceback" not in str(exc)
            reported += 1
            continue
        with open_dataset(ds) as d:
            got = d["train"].read(0, 64, fields=("patches", "label"))
        assert np.array_equal(got["patches"], want["patches"]), pos
        assert np.array_equal(got["label"], want["label"]), pos
    assert reported > 0  # the superblock and object headers are not all inert
    shard.write_bytes(bytes(raw))


def _patch_build(tmp_path, root, **kw):
    from blursynth.patches import build_patch_dataset
    from blursynth.schema import PatchParams

    params = PatchParams(
        source="shi",
        root=str(root),
        train_patches=600,
        val_patches=100,
        eval_images=2,
        patch_size=9,
        rows_per_shard=150,
        **kw,
    )
    return build_patch_dataset(params, tmp_path / "ds")


def test_a_patches_rerun_rebuilds_a_corrupted_shard_instead_of_blessing_it(tmp_path):
    from blursynth.shards import verify_dataset

    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    _patch_build(tmp_path, root)
    shard = tmp_path / "ds" / "train-00001-of-00004.h5"
    good = shard.read_bytes()
    raw = bytearray(good)
    raw[-100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(BlursynthError, match="sha256 differs"):
        verify_dataset(tmp_path / "ds")
    report = _patch_build(tmp_path, root)
    assert report.reused_shards == 4  # 3 intact train shards + 1 val; the damaged one rebuilt
    assert shard.read_bytes() == good
    verify_dataset(tmp_path / "ds").close()
    assert not list((tmp_path / "ds").glob("*.sha256"))  # the manifest holds the digests


def test_a_patches_rerun_with_a_missing_middle_shard_rebuilds_it(tmp_path):
    from blursynth.shards import verify_dataset

    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    _patch_build(tmp_path, root)
    good = (tmp_path / "ds" / "train-00001-of-00004.h5").read_bytes()
    (tmp_path / "ds" / "train-00001-of-00004.h5").unlink()
    _patch_build(tmp_path, root)
    assert (tmp_path / "ds" / "train-00001-of-00004.h5").read_bytes() == good
    verify_dataset(tmp_path / "ds").close()


def test_an_empty_patches_build_reports_no_reuse(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    res = CliRunner().invoke(
        data_cli,
        [
            "patches",
            "--source",
            "shi",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "ds"),
            "--train-patches",
            "0",
            "--val-patches",
            "0",
            "--eval-images",
            "2",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "reused" not in res.output


def test_a_flipped_label_byte_stops_fit_with_the_shard_and_row(tmp_path):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32, rows_per_shard=40)
    shard = ds / "train-00001-of-00002.h5"
    with h5py.File(shard, "r+") as f:
        f["label"][5] = 255
        f["category"][5] = 2
    res = CliRunner().invoke(
        train_cli,
        [
            "fit",
            str(ds),
            "--out",
            str(tmp_path / "run"),
            "--iterations",
            "1",
            "--workers",
            "0",
            "--no-verify",  # the label check behind the digest check
            "-q",
        ],
    )
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "train-00001-of-00002.h5: row 5: label 255" in res.output
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_tile_label_out_of_range_stops_fit(tmp_path):
    from blursynth.schema import TileParams
    from blursynth.tiles import build_tile_dataset

    root = make_tree(tmp_path / "src", motion=4, defocus=4, size=(40, 40))
    build_tile_dataset(
        TileParams(source="shi", root=str(root), tile_size=32, eval_images=2), tmp_path / "ds"
    )
    shard = sorted((tmp_path / "ds").glob("val-*.h5"))[0]
    with h5py.File(shard, "r+") as f:
        f["label"][0, 3, 3] = 7
    res = CliRunner().invoke(
        train_cli,
        [
            "fit",
            str(tmp_path / "ds"),
            "--arch",
            "unet",
            "--out",
            str(tmp_path / "run"),
            "--iterations",
            "1",
            "--batch-size",
            "2",
            "--workers",
            "0",
            "--no-verify",  # the label check behind the digest check
            "-q",
        ],
    )
    assert res.exit_code == 1 and f"{shard.name}: row 0: label 7" in res.output


def test_generate_exits_non_zero_when_any_sample_fails(tmp_path, monkeypatch):
    import json

    from _trees import make_voc

    from blursynth import generate as gen

    monkeypatch.setattr(gen, "MAX_REDRAWS", 0)  # no redraw: the failures stay failures

    voc = make_voc(tmp_path / "v", sizes=[(48, 64)] * 3)
    jpeg = voc / "JPEGImages/img1.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size * 2 // 3])  # a truncated JPEG
    out = tmp_path / "out"
    res = CliRunner().invoke(
        data_cli, ["generate", "--voc", str(voc), "--n", "6", "--out", str(out), "-q"]
    )
    report = json.loads((out / "report.json").read_text())
    assert res.exit_code == 1 and "sample(s) failed" in res.output and "img1.jpg" in res.output
    assert report["failed"] and report["written"] == 12 - len(report["failed"]) > 0


def test_tiny_voc_images_are_skipped_with_a_reason(tmp_path):
    import json

    from _trees import make_voc

    voc = make_voc(tmp_path / "v", sizes=[(48, 64), (10, 10)])
    out = tmp_path / "out"
    res = CliRunner().invoke(
        data_cli, ["generate", "--voc", str(voc), "--n", "2", "--out", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    skipped = json.loads((out / "report.json").read_text())["skipped_items"]
    assert [s["id"] for s in skipped] == ["img1"] and "minimum side" in skipped[0]["reason"]


def test_datasets_name_no_path_of_the_builders_machine(tmp_path):
    from blursynth.sources import open_dataset_images

    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    for command, extra in (
        ("patches", ["--train-patches", "40"]),
        ("tiles", ["--tile-size", "32"]),
    ):
        out = tmp_path / command
        res = CliRunner().invoke(
            data_cli,
            [
                command,
                "--source",
                "shi",
                "--root",
                str(root),
                "--out",
                str(out),
                "--eval-images",
                "2",
                "-q",
                *extra,
            ],
        )
        assert res.exit_code == 0, res.output
        for name in ("manifest.json", "eval.json", "README.md"):
            assert str(tmp_path) not in (out / name).read_text(), name
        _, items = open_dataset_images(out)  # the relative root still finds the images
        assert len(items) == 2 and all(it.image_path.exists() for it in items)


def test_images_without_masks_are_listed_and_all_sharp_masks_warned(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4, white_is_blurred=False)
    from PIL import Image

    for p in (root / "gt").iterdir():  # every mask sharp
        with Image.open(p) as im:
            size = im.size
        Image.new("L", size, 0).save(p)
    (root / "image" / "motion0099.png").write_bytes(
        (root / "image" / "motion0001.png").read_bytes()
    )
    for command, extra in (
        ("patches", ["--train-patches", "40"]),
        ("tiles", ["--tile-size", "32"]),
    ):
        res = CliRunner().invoke(
            data_cli,
            [
                command,
                "--source",
                "shi",
                "--root",
                str(root),
                "--out",
                str(tmp_path / command),
                "--eval-images",
                "2",
                "-q",
                *extra,
            ],
        )
        assert res.exit_code == 0, res.output
        assert "skipped motion0099" in res.output and "no mask" in res.output
        assert "warning: every" in res.output and "--polarity" in res.output
        assert "1 image(s) skipped" in res.output


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_killing_generate_takes_its_workers_with_it(tmp_path):
    import signal
    import subprocess
    import sys

    code = (
        "from blursynth.cli import main; main(['generate', '--n', '400', '--out', "
        f"{str(tmp_path / 'out')!r}, '--jobs', '2', '-q'])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list((tmp_path / "out" / "image").glob("*.png")):
            time.sleep(0.2)  # workers are rendering
        workers = [p for p in _children(proc.pid)]
        assert workers, "no worker process was started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 5
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [
            p
            for p in alive
            if Path(f"/proc/{p}").exists()
            and "Z" not in (Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1][:3])
        ]
    assert not alive, f"workers {alive} outlived the killed run"
