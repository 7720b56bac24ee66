"""The bundled pretrained weights: they load, and segment real CUHK images they never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from blursynth import metrics
from blursynth.preview import LEGEND_HEIGHT
from blursynth.sources import open_source
from blursynth_train.checkpoint import load_model
from blursynth_train.cli import main
from blursynth_train.segment import read_prob_png
from blursynth_train.weights import default_model_path


def test_report_weights_load_as_the_reports_network():
    from blursynth_train.weights import resolve_weights

    model, payload = load_model(resolve_weights("report"))
    assert model.count_parameters() == 7_185_538
    assert not model.training
    assert all(str(v.dtype) == "torch.float16" for v in payload["model_state"].values())
    assert "optimizer_state" not in payload
    assert payload["extra"]["train_images"]  # provenance: which images it was trained on
    assert resolve_weights("report").stat().st_size < 16e6


@pytest.mark.parametrize(
    "name,family,classes",
    [("bundled", "liteunet", 2), ("types", "liteunet", 3), ("unet", "unet", 2)],
)
def test_shipped_dense_weights_are_fp16_under_15_mb(name, family, classes):
    from blursynth_train.weights import resolve_weights

    model, payload = load_model(resolve_weights(name))
    assert model.config.kind == family and model.config.classes == classes
    assert not model.training
    assert all(
        str(v.dtype) == "torch.float16"
        for v in payload["model_state"].values()
        if v.is_floating_point()
    )
    assert "optimizer_state" not in payload and payload["extra"]["train_images"]
    assert resolve_weights(name).stat().st_size < 15e6


def _unseen_picks(cuhk_mini, per_type: int) -> tuple:
    """``per_type`` motion and defocus cuhk-mini images the bundled model never trained on."""
    _, payload = load_model(default_model_path())
    seen = set(payload["extra"]["train_images"].split(","))
    source = open_source("shi", cuhk_mini)
    unseen = [it for it in source.items if it.stem not in seen]
    assert len(unseen) >= 4, "cuhk-mini should hold images the bundled model never saw"
    picks = [it for it in unseen if it.blur_type == "motion"][:per_type] + [
        it for it in unseen if it.blur_type == "defocus"
    ][:per_type]
    return source, picks


def _segment_cli(picks, tmp_path, *extra) -> Path:
    """``segment`` (no --model unless given) on ``picks`` at stride 4; the output folder."""
    (tmp_path / "in").mkdir(exist_ok=True)
    for it in picks:
        (tmp_path / "in" / it.image_path.name).symlink_to(it.image_path.resolve())
    out = tmp_path / "seg"
    seg = CliRunner().invoke(
        main, ["segment", str(tmp_path / "in"), "--out", str(out), "--stride", "4", "-q", *extra]
    )
    assert seg.exit_code == 0, seg.output
    return out


@pytest.mark.realdata
def test_bundled_weights_segment_unseen_cuhk_images(cuhk_mini, tmp_path):
    """CI's version: one motion and one defocus image it never saw, segmented once by the
    ``segment`` command; mean IoU from its own probability maps beats the trivial answer."""
    source, picks = _unseen_picks(cuhk_mini, per_type=1)
    out = _segment_cli(picks, tmp_path, "--model", "bundled")
    ours, trivial = [], []
    for it in picks:
        gt = source.load(it)[1]
        prob = read_prob_png(out / f"{it.stem}_prob.png")
        mask = np.asarray(Image.open(out / f"{it.stem}_mask.png"))
        assert mask.shape == gt.shape and set(np.unique(mask)) <= {0, 255}
        ours.append(metrics.score_map(prob, gt)["miou"])
        trivial.append(metrics.score_map(np.ones_like(prob), gt)["miou"])
    assert np.mean(ours) > np.mean(trivial) + 0.1, (ours, trivial)


@pytest.mark.slow
@pytest.mark.realdata
def test_bundled_weights_beat_the_trivial_answer_on_unseen_cuhk_images(cuhk_mini, tmp_path):
    """The thorough version: 3 + 3 unseen images through ``segment`` and ``evaluate``.

    Mean IoU of the two classes must be well above the trivial "everything blurred" answer
    (whose mean IoU is about half its blurred-class IoU), and each mask must follow its
    ground truth's share of blurred pixels (one of these images is 98 % blurred, so
    "neither class everywhere" is not the test).
    """
    source, picks = _unseen_picks(cuhk_mini, per_type=3)
    for it in picks:
        (tmp_path / "src" / "image").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "gt").mkdir(exist_ok=True)
        (tmp_path / "src" / "image" / it.image_path.name).symlink_to(it.image_path.resolve())
        (tmp_path / "src" / "gt" / it.mask_path.name).symlink_to(it.mask_path.resolve())
    out = _segment_cli(picks, tmp_path)
    fractions = []
    for it in picks:
        mask = np.asarray(Image.open(out / f"{it.stem}_mask.png"))
        gt = source.load(it)[1]
        assert mask.shape == gt.shape and set(np.unique(mask)) <= {0, 255}
        fractions.append(((mask == 255).mean(), gt.mean()))
    # on average the masks follow the truth's share of blurred pixels (the dense model can
    # still miss most of one motion-blurred image: its weak spot, docs/results.md)
    assert np.mean([abs(ours - truth) for ours, truth in fractions]) < 0.2, fractions
    assert sum(0.05 < ours < 0.95 for ours, _ in fractions) >= len(picks) // 2, fractions

    res = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--source",
            "shi",
            "--root",
            str(tmp_path / "src"),
            "--model",
            str(default_model_path()),
            "--stride",
            "4",
            "--out",
            str(tmp_path / "eval"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "eval" / "results.json").read_text())["summary"]
    ours, trivial = summary[default_model_path().stem]["all"], summary["all-blurred"]["all"]
    assert ours["miou"] > trivial["miou"] + 0.1
    assert ours["accuracy"] > 0.6


def test_evaluate_takes_bundled_as_a_model(tmp_path):
    """``--model bundled`` scores the shipped weights without knowing where they live."""
    from blursynth_train.evaluate import parse_model_spec

    method = parse_model_spec("bundled")
    assert method.name == "bundled" and method.spec == str(default_model_path())
    assert parse_model_spec("cnn=bundled").name == "cnn"


def test_named_weights_resolve_for_every_command(tmp_path):
    """``bundled`` and ``report`` name shipped weights in segment, evaluate and fit --init."""
    from blursynth_train.evaluate import parse_model_spec
    from blursynth_train.weights import REPORT_WEIGHTS, WEIGHTS_DIR, resolve_weights

    assert resolve_weights("report") == WEIGHTS_DIR / REPORT_WEIGHTS
    assert resolve_weights("bundled") == resolve_weights(None) == default_model_path()
    assert parse_model_spec("report").spec == str(WEIGHTS_DIR / REPORT_WEIGHTS)
    image = tmp_path / "in.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(image)
    for name in ("bundled", "report", "types", "unet", "unet-types"):
        res = CliRunner().invoke(
            main, ["segment", str(image), "--model", name, "--out", str(tmp_path / name), "-q"]
        )
        assert res.exit_code == 0, res.output
        assert (tmp_path / name / "in_mask.png").is_file()
    res = CliRunner().invoke(main, ["segment", str(image), "--model", "nope", "--out", "x"])
    assert res.exit_code == 2 and "nope" in res.output and "Traceback" not in res.output


def test_types_weights_are_the_three_class_model(tmp_path):
    """``--model types`` segments into sharp / motion / defocus and writes the class map."""
    from blursynth_train.weights import resolve_weights

    model, payload = load_model(resolve_weights("types"))
    assert model.config.classes == 3 and payload["extra"]["train_images"]
    assert resolve_weights("types").stat().st_size < 10e6
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)).save(image)
    res = CliRunner().invoke(
        main, ["segment", str(image), "--model", "types", "--out", str(tmp_path / "o"), "-q"]
    )
    assert res.exit_code == 0, res.output
    picture = np.asarray(Image.open(tmp_path / "o" / "in_classes.png"))
    assert picture.shape == (48 + LEGEND_HEIGHT, 64, 3)  # the image, then its legend
    with Image.open(tmp_path / "o" / "in_labels.png") as labels:
        assert labels.mode == "P" and set(np.unique(np.asarray(labels))) <= {0, 1, 2}


@pytest.mark.realdata
def test_types_weights_name_the_blur_type_of_unseen_cuhk_images(cuhk_mini):
    """The Python API on real photographs the ``types`` model never trained on: over each
    image's truly blurred pixels, the label of its blur type is the commonest blurred one."""
    from blursynth_train.predict import Segmenter
    from blursynth_train.weights import resolve_weights

    _, payload = load_model(resolve_weights("types"))
    seen = set(payload["extra"]["train_images"].split(","))
    source = open_source("shi", cuhk_mini)
    unseen = [it for it in source.items if it.stem not in seen]
    picks = [next(it for it in unseen if it.blur_type == t) for t in ("motion", "defocus")]
    seg = Segmenter("types", device="cpu")
    for it in picks:
        image, gt = source.load(it)
        prob, labels = seg.predict(image)
        assert prob.shape == gt.shape and labels.dtype == np.uint8
        motion, defocus = (int(np.count_nonzero(labels[gt] == k)) for k in (1, 2))
        assert (motion > defocus) == (it.blur_type == "motion"), (it.stem, motion, defocus)
