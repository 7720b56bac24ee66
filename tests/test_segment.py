"""``blursynth_train segment`` through the CLI, and its helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blursynth_train.checkpoint import load_model, save_checkpoint
from blursynth_train.cli import main
from blursynth_train.models import BlurNet, ModelConfig
from blursynth_train.predict import predict
from blursynth_train.segment import (
    expand_inputs,
    overlay,
    read_prob_png,
    write_prob_png,
)

NARROW = ModelConfig(conv1_channels=8, conv2_channels=12, fc_units=16)  # fast; same geometry


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "model.pt", BlurNet(NARROW))


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    shapes = {"a": (37, 45), "b": (20, 16)}  # b is smaller than the 31 px patch
    for stem, (h, w) in shapes.items():
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"{stem}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder, shapes


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help():
    result = run("segment", "--help")
    assert result.exit_code == 0 and "--stride" in result.output


@pytest.mark.parametrize("stride", [1, 4])
def test_segment_writes_consistent_outputs(tmp_path, checkpoint, images, stride):
    folder, shapes = images
    out = tmp_path / "out"
    result = run(
        "segment",
        folder,
        "--model",
        checkpoint,
        "--out",
        out,
        "--stride",
        stride,
        "--device",
        "cpu",
        "--postprocess",
        "none",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "segmented 2 image(s)" in result.output
    model, _ = load_model(checkpoint)
    for stem, (h, w) in shapes.items():
        image = np.asarray(Image.open(folder / f"{stem}.png"))
        expected = predict(model, image, stride)
        prob = read_prob_png(out / f"{stem}_prob.png")
        assert prob.shape == (h, w)
        assert np.abs(prob - expected).max() <= 1 / 65535
        mask = np.asarray(Image.open(out / f"{stem}_mask.png"))
        assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
        decided = np.abs(expected - 0.5) > 1e-4
        np.testing.assert_array_equal((mask == 255)[decided], (expected >= 0.5)[decided])
        over = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        assert over.shape == (h, w, 3) and over.dtype == np.uint8
    assert not list(out.glob("*.tmp-*"))


def test_threshold_zero_marks_everything(tmp_path, checkpoint, images):
    folder, _ = images
    out = tmp_path / "out"
    result = run(
        "segment",
        folder / "a.png",
        "--model",
        checkpoint,
        "--out",
        out,
        "--threshold",
        0,
        "--stride",
        4,
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert (np.asarray(Image.open(out / "a_mask.png")) == 255).all()


def test_globs_and_duplicate_stems(tmp_path, images):
    folder, _ = images
    assert [p.name for p in expand_inputs([str(folder / "*.png")])] == ["a.png", "b.png"]
    assert [p.name for p in expand_inputs([str(folder), str(folder / "a.png")])] == [
        "a.png",
        "b.png",
    ]
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(other / "a.jpg")
    result = run("segment", folder, other, "--model", tmp_path / "x", "--out", tmp_path / "o")
    assert result.exit_code != 0


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.strip().count("\n") == 0
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_errors_are_one_line(tmp_path, checkpoint, images):
    folder, _ = images
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    one_line_error(
        run("segment", folder, "--model", corrupt, "--out", out, "-q"), "not a readable checkpoint"
    )
    payload = torch.load(checkpoint, weights_only=True)
    payload["model_config"] = ModelConfig().to_dict()  # narrow weights, report-size config
    mismatched = tmp_path / "mismatched.pt"
    torch.save(payload, mismatched)
    one_line_error(
        run("segment", folder, "--model", mismatched, "--out", out, "-q"),
        "does not match the model",
    )
    one_line_error(
        run("segment", tmp_path / "nothing*.png", "--model", checkpoint, "--out", out, "-q"),
        "no image found",
    )
    if not torch.cuda.is_available():
        one_line_error(
            run("segment", folder, "--model", checkpoint, "--out", out, "-q", "--device", "cuda"),
            "no CUDA device",
        )
    assert not out.exists() or not list(out.iterdir())


def test_prob_png_round_trip(tmp_path):
    prob = np.linspace(0, 1, 120, dtype=np.float32).reshape(10, 12)
    write_prob_png(tmp_path / "p.png", prob)
    assert np.abs(read_prob_png(tmp_path / "p.png") - prob).max() <= 0.5 / 65535 + 1e-7


def test_overlay_tints_only_the_mask():
    image = np.full((40, 40, 3), 100, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    out = overlay(image, mask)
    assert (out[0, 0] == 100).all()  # outside: unchanged
    assert out[20, 20, 0] > 100 and out[20, 20, 1] < 100  # inside: red tint
    assert tuple(out[10, 20]) == (255, 0, 0)  # contour


def test_segment_postprocess_guided(tmp_path, checkpoint, images):
    from blursynth.postprocess import guided_filter

    folder, _ = images
    out = tmp_path / "out"
    result = run(
        "segment", folder / "a.png", "--model", checkpoint, "--out", out, "--device", "cpu", "-q"
    )  # guided is the default
    assert result.exit_code == 0, result.output
    model, _ = load_model(checkpoint)
    image = np.asarray(Image.open(folder / "a.png"))
    expected = guided_filter(image.astype(np.float32) / 255, predict(model, image))
    assert np.abs(read_prob_png(out / "a_prob.png") - expected).max() <= 1 / 65535


def test_export_strips_to_a_small_float16_file_that_predicts_the_same(tmp_path, images):
    torch.manual_seed(0)
    model = BlurNet(NARROW)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(2, 3, 31, 31, dtype=torch.uint8)).sum().backward()
    opt.step()  # momentum buffers make the training checkpoint about twice the size
    src = save_checkpoint(
        tmp_path / "train.pt",
        model,
        optimizer=opt,
        iteration=7,
        extra={"manifest_sha256": "abc", "rng": {"x": torch.zeros(3)}},
    )
    out = tmp_path / "small.pt"
    result = run("export", src, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size < src.stat().st_size / 3
    small, payload = load_model(out)
    assert payload["iteration"] == 7 and payload["extra"] == {"manifest_sha256": "abc"}
    assert "optimizer_state" not in payload
    assert all(v.dtype == torch.float16 for v in payload["model_state"].values())
    folder, _ = images
    image = np.asarray(Image.open(folder / "a.png"))
    full, _ = load_model(src)
    assert np.abs(predict(small, image) - predict(full, image)).max() < 2e-2


def test_segment_without_model_uses_the_bundled_weights_or_says_they_are_missing(
    tmp_path, images, monkeypatch
):
    from blursynth_train import weights

    folder, _ = images
    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS", "does-not-exist.pt")
    result = run("segment", folder / "a.png", "--out", tmp_path / "o", "-q")
    assert result.exit_code == 1
    assert "bundled weights are missing" in result.output and "Traceback" not in result.output
