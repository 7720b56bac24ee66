"""Test-time augmentation (``--tta``): the averaged maps are those of the image's frame, and
they make any model exactly equivariant under the flips and turns averaged over."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blursynth_train.checkpoint import save_checkpoint
from blursynth_train.cli import main
from blursynth_train.models import BlurNet, ModelConfig, UNet, UNetConfig
from blursynth_train.predict import model_maps
from blursynth_train.segment import read_prob_png


def _unet(classes: int) -> UNet:
    """Random weights (no symmetry of their own), the head scaled so the map spans [0, 1]."""
    torch.manual_seed(0)
    model = UNet(UNetConfig(classes=classes, width=4, depth=2)).eval()
    with torch.no_grad():
        model.head.weight.mul_(300)
    return model


def _images(*shapes):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in shapes]


# every shape a multiple of the U-Net's 8 px, so its right/bottom padding is no asymmetry
SHAPES = ((32, 40), (32, 40), (48, 24))


def _turned(a, k, flip, axes=(0, 1)):
    """``a`` turned k quarter turns, then flipped left-right, in the plane of ``axes``."""
    a = np.rot90(a, k, axes=axes)
    return np.ascontiguousarray(np.flip(a, axis=axes[1]) if flip else a)


@pytest.mark.parametrize(
    "tta,group",
    [("d4", [(k, f) for k in range(4) for f in (False, True)]), ("flips", [(0, True), (2, False)])],
)
@pytest.mark.parametrize("classes", [2, 3])
def test_the_averaged_map_turns_with_the_image(tta, group, classes):
    """map(turn(image)) == turn(map(image)) for every transform of the group averaged over;
    a map put back in the wrong frame breaks it. Without TTA the model is not equivariant."""
    model = _unet(classes)
    images = _images(*SHAPES)
    plain = model_maps(model, images)
    maps = model_maps(model, images, tta=tta)
    assert len(group) >= 2 and len(maps) == len(images)
    for k, flip in group:
        turned = model_maps(model, [_turned(im, k, flip) for im in images], tta=tta)
        for (p, c), (tp, tc) in zip(maps, turned, strict=True):
            assert np.allclose(_turned(p, k, flip), tp, atol=1e-5)
            if classes == 3:
                assert np.allclose(_turned(c, k, flip, axes=(1, 2)), tc, atol=1e-5)
            else:
                assert c is None and tc is None
    for (p, c), (p0, _) in zip(maps, plain, strict=True):
        assert p.shape == p0.shape and p.dtype == np.float32
        assert p0.max() - p0.min() > 0.3  # a map with structure
        assert np.abs(p - p0).max() > 0.05  # and the average is not it
        if classes == 3:
            assert np.allclose(p, 1 - c[0], atol=1e-6)
            assert np.allclose(c.sum(0), 1, atol=1e-5)


def test_no_tta_is_the_plain_map_and_a_bad_name_is_refused():
    from blursynth.errors import BlursynthError

    model = _unet(2)
    images = _images((32, 40))
    ((a, _),) = model_maps(model, images)
    ((b, _),) = model_maps(model, images, tta="none")
    assert np.array_equal(a, b)
    with pytest.raises(BlursynthError, match="test-time augmentation"):
        model_maps(model, images, tta="spin")


def test_tta_averages_the_patch_cnn_too():
    """The report CNN (reflect padding, any size) is also made equivariant."""
    torch.manual_seed(0)
    model = BlurNet(ModelConfig(conv1_channels=4, conv2_channels=4, fc_units=8)).eval()
    (image,) = _images((21, 26))
    ((p, c),) = model_maps(model, [image], tta="flips")
    ((q, _),) = model_maps(model, [np.ascontiguousarray(image[::-1, ::-1])], tta="flips")
    assert c is None and np.allclose(p[::-1, ::-1], q, atol=1e-5)


def test_segment_and_evaluate_take_tta_on_the_command_line(tmp_path):
    model = _unet(3)
    ckpt = save_checkpoint(tmp_path / "m.pt", model)
    (image,) = _images((32, 40))
    Image.fromarray(image).save(tmp_path / "a.png")
    runner = CliRunner()

    def segment(*args):
        return runner.invoke(
            main, [str(a) for a in ("segment", tmp_path / "a.png", "--model", ckpt, *args)]
        )

    for tta in ("none", "d4"):
        res = segment("--out", tmp_path / tta, "--postprocess", "none", "--tta", tta, "-q")
        assert res.exit_code == 0, res.output
        ((expected, _),) = model_maps(model, [image], tta=tta)
        got = read_prob_png(tmp_path / tta / "a_prob.png")
        assert np.abs(got - expected).max() <= 1 / 65535
        assert (tmp_path / tta / "a_classes.png").is_file()
    res = segment("--out", tmp_path / "x", "--tta", "spin")
    assert res.exit_code == 2 and "spin" in res.output and "Traceback" not in res.output

    folder = tmp_path / "set"
    (folder / "image").mkdir(parents=True)
    (folder / "gt").mkdir()
    Image.fromarray(image).save(folder / "image" / "motion0001.png")
    gt = np.zeros((32, 40), np.uint8)
    gt[:, 20:] = 255
    Image.fromarray(gt).save(folder / "gt" / "motion0001.png")
    res = runner.invoke(
        main,
        [
            "evaluate",
            "--source",
            "shi",
            "--root",
            str(folder),
            "--model",
            f"m={ckpt}",
            "--tta",
            "d4",
            "--out",
            str(tmp_path / "ev"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert result["settings"]["tta"] == "d4"
    assert "test-time augmentation d4" in (tmp_path / "ev" / "results.md").read_text()
