"""``blursynth patches / info / verify`` through click's CliRunner, with bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _trees import make_tree
from click.testing import CliRunner
from PIL import Image

from blursynth.cli import main

SMALL = [
    "--train-patches",
    "300",
    "--val-patches",
    "60",
    "--eval-images",
    "2",
    "--patch-size",
    "9",
    "--rows-per-shard",
    "200",
    "-q",
]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("command", ["patches", "info", "verify"])
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_build_info_verify(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    out = tmp_path / "ds"
    result = run("patches", "--source", "shi", "--root", root, "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    assert "train 300, val 60 patches; 0 image(s) skipped" in result.output
    info = run("info", out)
    assert info.exit_code == 0
    assert "| train | motion | sharp | 0 | 50 |" in info.output
    assert "patches: uint8 (N, 3, 9, 9)" in info.output
    assert run("verify", out, "-q").exit_code == 0
    shard = out / "val-00000-of-00001.h5"
    data = bytearray(shard.read_bytes())
    data[-100] ^= 1
    shard.write_bytes(bytes(data))
    bad = run("verify", out, "-q")
    assert bad.exit_code == 1
    assert "val-00000-of-00001.h5: sha256 differs" in bad.output


def test_unfinished_folder_is_not_a_dataset(tmp_path):
    result = run("info", tmp_path)
    assert result.exit_code == 1 and "no manifest.json" in result.output


def _corrupt(root, kind):
    """Spoil motion0001 in one way; return the text the skip message must contain."""
    image, mask = root / "image" / "motion0001.png", root / "gt" / "motion0001.png"
    if kind == "size":
        Image.fromarray(np.zeros((20, 20), np.uint8)).save(mask)
        return f"{mask}: mask is 20x20 but its image is 56x48"
    if kind == "truncated":
        image.write_bytes(image.read_bytes()[:300])
        return f"{image}: cannot read image"
    if kind == "small":
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(image)
        Image.fromarray(np.zeros((6, 6), np.uint8)).save(mask)
        return f"{image}: image is 6x6, smaller than the 9x9 patch"
    if kind == "grey":
        grey = np.asarray(Image.open(mask)).copy()
        grey[0, :5] = 128
        Image.fromarray(grey).save(mask)
        return f"{mask}: mask is not binary"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["size", "truncated", "small", "grey"])
def test_bad_image_is_skipped_and_named(tmp_path, kind):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    expected = _corrupt(root, kind)
    result = run("patches", "--source", "shi", "--root", root, "--out", tmp_path / "ds", *SMALL)
    assert result.exit_code == 0, result.output
    assert expected in result.output
    assert "1 image(s) skipped" in result.output
    assert '"stem": "motion0001"' in (tmp_path / "ds" / "manifest.json").read_text()


def test_no_usable_image_is_an_error(tmp_path):
    root = make_tree(tmp_path / "src", motion=1, defocus=0)
    _corrupt(root, "truncated")
    result = run("patches", "--source", "shi", "--root", root, "--out", tmp_path / "ds", *SMALL)
    assert result.exit_code == 1
    assert "none of the 1 image(s) is usable" in result.output and "motion0001.png" in result.output


def test_empty_root_and_wrong_source(tmp_path):
    (tmp_path / "src" / "image").mkdir(parents=True)
    (tmp_path / "src" / "gt").mkdir()
    result = run(
        "patches", "--source", "shi", "--root", tmp_path / "src", "--out", tmp_path / "ds", *SMALL
    )
    assert result.exit_code == 1 and "no image in 'image/'" in result.output
    result = run(
        "patches", "--source", "voc", "--root", tmp_path / "src", "--out", tmp_path / "ds", *SMALL
    )
    assert result.exit_code == 2 and "'voc' is not one of" in result.output


def test_folder_options_are_refused_for_shi(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    result = run(
        "patches",
        "--source",
        "shi",
        "--root",
        root,
        "--out",
        tmp_path / "ds",
        "--polarity",
        "sharp-white",
        *SMALL,
    )
    assert result.exit_code == 1 and "--source folder only" in result.output


def test_negative_seed_is_a_usage_error_not_a_traceback(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    result = run(
        "patches",
        "--source",
        "shi",
        "--root",
        root,
        "--out",
        tmp_path / "ds",
        *SMALL,
        "--seed",
        "-1",
    )
    assert result.exit_code == 2 and "--seed" in result.output
    assert not (tmp_path / "ds").exists()
