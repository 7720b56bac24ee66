"""``blursynth_train evaluate`` through the CLI: JSON and Markdown against direct metrics."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blursynth import baselines, metrics
from blursynth.sources import open_source
from blursynth_train.checkpoint import save_checkpoint
from blursynth_train.cli import main
from blursynth_train.evaluate import build_methods, table1
from blursynth_train.models import BlurNet, ModelConfig

NARROW = ModelConfig(conv1_channels=8, conv2_channels=12, fc_units=16)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def tree(tmp_path):
    """CUHK layout, 2 motion + 2 defocus 48 x 64 images: sharp texture, blurred rectangle."""
    rng = np.random.default_rng(0)
    root = tmp_path / "tree"
    (root / "image").mkdir(parents=True)
    (root / "gt").mkdir()
    for stem in ("motion0001", "motion0002", "out_of_focus0001", "out_of_focus0002"):
        texture = cv2.GaussianBlur(rng.random((48, 64, 3), dtype=np.float32), (0, 0), 0.8)
        mask = np.zeros((48, 64), bool)
        mask[:, int(rng.integers(20, 40)) :] = True
        image = np.where(mask[..., None], cv2.GaussianBlur(texture, (0, 0), 3.0), texture)
        Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(root / "image" / f"{stem}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "gt" / f"{stem}.png")
    return root


def test_help():
    result = run("evaluate", "--help")
    assert result.exit_code == 0 and "--baseline" in result.output


def test_baselines_json_and_markdown_match_direct_metrics(tmp_path, tree):
    out = tmp_path / "eval"
    result = run(
        "evaluate", "--source", "shi", "--root", tree, "--baseline", "laplacian", "--out", out, "-q"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["methods"]] == ["laplacian", "all-blurred"]  # trivial added
    source = open_source("shi", tree)
    assert [im["stem"] for im in data["images"]] == [it.stem for it in source.items]
    per_method = {"laplacian": [], "all-blurred": []}
    for item, row in zip(source.items, data["images"], strict=True):
        image, gt = source.load(item)
        assert row["blur_type"] == item.blur_type
        for name in per_method:
            direct = metrics.score_map(baselines.blur_map(image, name), gt)
            got = dict(row["scores"][name])
            assert got.pop("counts") == direct["counts"]
            assert got == pytest.approx({k: v for k, v in direct.items() if k != "counts"})
            per_method[name].append((item.blur_type, direct))
    for name, rows in per_method.items():
        for group in ("motion", "defocus", "all"):
            chosen = [s for t, s in rows if group == "all" or t == group]
            summary = data["summary"][name][group]
            assert summary["n"] == len(chosen)
            assert summary["iou"] == pytest.approx(np.mean([s["iou"] for s in chosen]))
            tp, fp, fn, _ = np.sum([s["counts"] for s in chosen], axis=0)
            assert summary["iou_pooled"] == pytest.approx(tp / (tp + fp + fn))
    lap, triv = data["summary"]["laplacian"]["all"], data["summary"]["all-blurred"]["all"]
    assert lap["iou"] > triv["iou"] + 0.2
    md = (out / "results.md").read_text()
    assert md == result.output.split("wrote ")[0].rstrip("\n") + "\n"
    row = "| laplacian | " + " | ".join(
        f"{data['summary']['laplacian'][g]['iou']:.3f}" for g in ("motion", "defocus", "all")
    )
    assert row in md and "| all-blurred |" in md and "Table 1" not in md


def test_models_named_for_table_1(tmp_path, tree):
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "m.pt", BlurNet(NARROW))
    out = tmp_path / "eval"
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        tree,
        "--model",
        f"synth/both={ckpt}",
        "--model",
        f"synth/motion={ckpt}",
        "--model",
        ckpt,
        "--stride",
        "4",
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["methods"]] == [
        "synth/both",
        "synth/motion",
        "m",
        "all-blurred",
    ]
    s = data["summary"]
    # same weights under three names: same scores
    assert s["synth/both"]["all"] == pytest.approx(s["m"]["all"])
    md = (out / "results.md").read_text()
    assert "Table 1" in md
    both, motion = s["synth/both"]["all"]["iou"], s["synth/motion"]["motion"]["iou"]
    assert f"| synth | {motion:.3f} | – | {both:.3f} |" in md


def test_dataset_eval_list(tmp_path, tree):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "manifest.json").write_text(json.dumps({"schema_version": 1, "splits": {}, "params": {}}))
    (ds / "eval.json").write_text(
        json.dumps(
            {
                "source": "shi",
                "root": str(tree),
                "options": {},
                "items": [{"stem": "out_of_focus0002", "blur_type": "defocus"}],
            }
        )
    )
    out = tmp_path / "eval"
    result = run("evaluate", "--dataset", ds, "--baseline", "su", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [im["stem"] for im in data["images"]] == ["out_of_focus0002"]
    assert data["summary"]["su"]["motion"] == {"n": 0}
    assert "| su | – |" in (out / "results.md").read_text()


def test_dataset_val_images_choose_settings_apart_from_the_held_out_ones(tmp_path, tree):
    ds = tmp_path / "ds"
    ds.mkdir()
    images = [
        {"stem": "motion0001", "split": "train", "blur_type": "motion"},
        {"stem": "motion0002", "split": "val", "blur_type": "motion"},
        {"stem": "out_of_focus0001", "split": "val", "blur_type": "defocus"},
        {"stem": "out_of_focus0002", "split": "eval", "blur_type": "defocus"},
    ]
    (ds / "manifest.json").write_text(
        json.dumps({"schema_version": 1, "splits": {}, "params": {}, "images": images})
    )
    (ds / "eval.json").write_text(
        json.dumps(
            {
                "source": "shi",
                "root": str(tree),
                "options": {},
                "items": [{"stem": "out_of_focus0002", "blur_type": "defocus"}],
            }
        )
    )
    for split, stems in (
        ("val", ["motion0002", "out_of_focus0001"]),
        ("train", ["motion0001"]),
        ("eval", ["out_of_focus0002"]),
    ):
        out = tmp_path / split
        result = run(
            "evaluate", "--dataset", ds, "--split", split, "--baseline", "su", "--out", out, "-q"
        )
        assert result.exit_code == 0, result.output
        data = json.loads((out / "results.json").read_text())
        assert [im["stem"] for im in data["images"]] == stems
    (ds / "manifest.json").write_text(
        json.dumps({"schema_version": 1, "splits": {}, "params": {}, "images": images[:1]})
    )
    result = run(
        "evaluate",
        "--dataset",
        ds,
        "--split",
        "val",
        "--baseline",
        "su",
        "--out",
        tmp_path / "none",
        "-q",
    )
    assert result.exit_code == 1 and "manifest lists no val image" in result.output
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        tree,
        "--split",
        "val",
        "--baseline",
        "su",
        "--out",
        tmp_path / "none",
        "-q",
    )
    assert result.exit_code == 1 and "--split applies to --dataset" in result.output


def test_usage_errors(tmp_path, tree):
    out = tmp_path / "eval"
    for args, fragment in [
        (("--source", "shi", "--root", tree), "nothing to evaluate"),
        (("--baseline", "su"), "either --dataset"),
        (("--source", "shi", "--baseline", "su"), "--source needs --root"),
        (("--source", "shi", "--root", tree, "--model", f"a={tree}/x.pt"), "not found"),
        (
            ("--source", "shi", "--root", tree, "--baseline", "su", "--model", f"su={tree}/x.pt"),
            "unique",
        ),
    ]:
        result = run("evaluate", *args, "--out", out, "-q")
        assert result.exit_code == 1, result.output
        assert fragment in result.output and "Traceback" not in result.output
    corrupt = tmp_path / "bad.pt"
    corrupt.write_bytes(b"\x00" * 64)
    result = run("evaluate", "--source", "shi", "--root", tree, "--model", corrupt, "--out", out)
    assert result.exit_code == 1 and "not a readable checkpoint" in result.output
    assert result.output.strip().count("\n") == 0
    assert not out.exists()


def test_table1_layout():
    summary = {"cuhk/defocus": {"defocus": {"iou": 0.5}}, "other": {"all": {"iou": 0.1}}}
    assert table1(summary).splitlines()[-1] == "| cuhk | – | 0.500 | – |"
    assert table1({"plain": {}}) is None
    assert [m.name for m in build_methods(baseline_names=["all-blurred"])] == ["all-blurred"]


@pytest.mark.realdata
def test_laplacian_beats_the_trivial_answer_on_cuhk_defocus(tmp_path, cuhk_mini):
    out = tmp_path / "eval"
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        cuhk_mini,
        "--baseline",
        "laplacian",
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    s = json.loads((out / "results.json").read_text())["summary"]
    lap, triv = s["laplacian"]["defocus"], s["all-blurred"]["defocus"]
    assert lap["n"] == triv["n"] == 8
    assert lap["accuracy"] > triv["accuracy"] and lap["miou"] > triv["miou"]


@pytest.mark.realdata
def test_trivial_iou_is_the_blurred_fraction_on_dut(tmp_path, dut_sample):
    out = tmp_path / "eval"
    result = run(
        "evaluate",
        "--source",
        "folder",
        "--root",
        dut_sample,
        "--polarity",
        "sharp-white",
        "--baseline",
        "all-blurred",
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    for im in data["images"]:
        assert im["scores"]["all-blurred"]["iou"] == pytest.approx(im["blurred_fraction"])
        assert 0 < im["blurred_fraction"] < 1


def test_postprocess_scores_each_model_raw_and_smoothed(tmp_path, tree):
    """``--postprocess guided`` adds NAME+guided, scored on the filtered map of the same run."""
    from blursynth.postprocess import guided_filter, postprocess
    from blursynth_train.checkpoint import load_model
    from blursynth_train.predict import predict

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "m.pt", BlurNet(NARROW))
    out = tmp_path / "eval"
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        tree,
        "--model",
        f"cnn={ckpt}",
        "--baseline",
        "laplacian",
        "--postprocess",
        "guided",
        "--postprocess",
        "guided-otsu",
        "--stride",
        "4",
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["methods"]] == [
        "cnn",
        "laplacian",
        "all-blurred",
        "cnn+guided",
        "cnn+guided-otsu",
    ]
    assert data["settings"]["postprocess"] == "guided,guided-otsu"
    assert "| cnn+guided-otsu |" in (out / "results.md").read_text()
    model, _ = load_model(ckpt)
    src = open_source("shi", tree)
    image, gt = src.load(src.items[0])
    prob = predict(model, np.rint(image * 255).astype(np.uint8), 4)
    expected = metrics.score_map(guided_filter(image, prob), gt)
    got = data["images"][0]["scores"]["cnn+guided"]
    assert got["iou"] == pytest.approx(expected["iou"], abs=1e-6)
    expected = metrics.score_map(postprocess("guided-otsu", image, prob), gt)
    got = data["images"][0]["scores"]["cnn+guided-otsu"]
    assert got["miou"] == pytest.approx(expected["miou"], abs=1e-6)


def test_only_scores_one_blur_type(tmp_path, tree):
    out = tmp_path / "eval"
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        tree,
        "--baseline",
        "laplacian",
        "--only",
        "defocus",
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [im["stem"] for im in data["images"]] == ["out_of_focus0001", "out_of_focus0002"]
    assert data["summary"]["laplacian"]["motion"]["n"] == 0


def test_non_finite_map_is_a_one_line_error(tmp_path, tree, monkeypatch):
    """A map with NaN (a diverged checkpoint) is named, not scored as "sharp" nor a traceback."""
    real = baselines.blur_map

    def nan_map(image, method):
        out = real(image, method)
        if method == "laplacian":
            out[0, 0] = np.nan
        return out

    monkeypatch.setattr(baselines, "blur_map", nan_map)
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        tree,
        "--baseline",
        "laplacian",
        "--out",
        tmp_path / "eval",
        "-q",
    )
    assert result.exit_code == 1, result.output
    assert "Error: laplacian gives non-finite blur probabilities on motion0001" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "eval").exists()


def test_unreadable_image_is_skipped_and_listed(tmp_path, tree):
    (tree / "image" / "motion0002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "eval"
    result = run(
        "evaluate", "--source", "shi", "--root", tree, "--baseline", "laplacian", "--out", out, "-q"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["images"] == 3
    assert [s["stem"] for s in data["skipped"]] == ["motion0002"]
    assert "motion0002.png" in data["skipped"][0]["reason"]
    assert "Skipped (1 unreadable images)" in (out / "results.md").read_text()
    for path in (tree / "image").iterdir():
        path.write_bytes(b"junk")
    result = run(
        "evaluate", "--source", "shi", "--root", tree, "--baseline", "laplacian", "--out", out, "-q"
    )
    assert result.exit_code == 1 and "no image could be scored" in result.output
    assert "Traceback" not in result.output


def test_the_report_explains_the_adaptive_f_measure_and_pooled_iou(tmp_path, tree):
    result = run(
        "evaluate",
        "--source",
        "shi",
        "--root",
        tree,
        "--baseline",
        "su",
        "--out",
        tmp_path / "e",
        "-q",
    )
    assert result.exit_code == 0, result.output
    md = (tmp_path / "e" / "results.md").read_text()
    assert "IoU pooled" in md
    assert "min(2 x its mean, 1)" in md and "not a failed method" in md
