"""``blursynth generate`` and ``preview`` end to end: real files, real CLI invocations."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from _trees import make_voc, write_palette_png
from click.testing import CliRunner

import blursynth
from blursynth import blurmodels
from blursynth.cli import main
from blursynth.errors import BlursynthError
from blursynth.generate import default_voc_root, generate, rerender
from blursynth.imageio import read_image, read_image_u8, read_mask_u8, write_png
from blursynth.preview import contact_sheet
from blursynth.render import render_motion
from blursynth.sampling import SampleRecord
from blursynth.sources import SynthSource
from blursynth.sources.voc import VOCSegmentation, object_mask

N = 3


def tree_bytes(folder: Path, skip=("report.json",)) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def cli(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def synth_tiles3(out: Path, tiles: Path) -> dict:
    """``blursynth tiles --source synth --classes 3`` of a generate folder: its rows by split."""
    from blursynth.shards import open_dataset

    res = cli(
        "tiles", "--source", "synth", "--root", out, "--out", tiles, "--classes", 3,
        "--eval-images", 0, "-q",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    with open_dataset(tiles) as ds:
        return {s: ds[s].read(0, len(ds[s])) for s in ds.splits}


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="module")
def reference(voc, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    generate(out, n=N, voc=voc.parent, seed=5, quiet=True)
    return out


def test_jobs_do_not_change_bytes(voc, reference, tmp_path):
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        result = cli(
            "generate",
            "--voc",
            voc.parent.parent,
            "--n",
            N,
            "--out",
            out,
            "--seed",
            5,
            "--jobs",
            jobs,
            "--quiet",
        )
        assert result.exit_code == 0, result.output
        assert f"{2 * N} of {2 * N} images" in result.output
    one, two = tree_bytes(tmp_path / "j1", skip=()), tree_bytes(tmp_path / "j2", skip=())
    assert one == two and one == tree_bytes(reference, skip=())
    assert len([k for k in one if k.startswith("image/")]) == 2 * N


def test_layout_is_read_by_synth_source(reference):
    source = SynthSource(reference)
    assert len(source) == 2 * N
    assert sorted({it.blur_type for it in source}) == ["defocus", "motion"]
    for item in source:
        image, blur = source.load(item)
        assert image.shape[:2] == blur.shape and 0 < blur.mean() < 1
        assert set(np.unique(read_mask_u8(item.mask_path))) == {0, 255}
        assert (reference / "soft" / f"{item.stem}.png").is_file()
    lines = (reference / "records.jsonl").read_text().splitlines()
    names = [json.loads(line)["name"] for line in lines]
    assert names == sorted(names) and len(names) == 2 * N
    report = json.loads((reference / "report.json").read_text())
    assert report["written"] == 2 * N and report["failed"] == [] == report["skipped_items"]


def test_rerender_reproduces_bytes(voc, reference, tmp_path):
    ds = VOCSegmentation(voc)
    run = json.loads((reference / "run.json").read_text())  # the run's PNG encoding
    png = {"level": run["png_level"], "strategy": run["png_strategy"], "filter": run["png_filter"]}
    lines = (reference / "records.jsonl").read_text().splitlines()
    assert len(lines) == len(list((reference / "image").glob("*.png"))) > 0
    for line in lines:
        record = SampleRecord.from_dict(json.loads(line))
        arrays = rerender(record, ds)
        for sub in ("image", "gt", "soft"):
            write_png(tmp_path / "x.png", arrays[sub], **png)
            assert (tmp_path / "x.png").read_bytes() == (
                reference / sub / f"{record.name}.png"
            ).read_bytes()
        assert json.loads(
            (reference / "records" / f"{record.name}.json").read_text()
        ) == json.loads(line)


def test_resume_completes_an_interrupted_run(voc, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    # what a kill leaves: missing outputs, a missing sidecar, a half-written temporary file
    (out / "image" / "motion0002.png").unlink()
    (out / "gt" / "motion0003.png").unlink()
    (out / "records" / "defocus0001.json").unlink()
    (out / "image" / "defocus0002.png.tmp-999").write_bytes(b"\x89PNG half")
    (out / "records.jsonl").write_text("")
    (out / "report.json").unlink()
    result = cli("generate", "--voc", voc, "--n", N, "--out", out, "--seed", 5, "--resume", "-q")
    assert result.exit_code == 0, result.output
    assert tree_bytes(out) == tree_bytes(reference)
    report = json.loads((out / "report.json").read_text())
    assert report["written"] == 3 and report["already_done"] == 2 * N - 3


def test_resume_refuses_other_settings(voc, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    result = cli("generate", "--voc", voc, "--n", N, "--out", out, "--seed", 6, "--resume")
    assert result.exit_code == 1 and "cannot resume: seed" in result.output


def test_non_empty_output_needs_resume(voc, reference):
    result = cli("generate", "--voc", voc, "--n", N, "--out", reference)
    assert result.exit_code == 1
    assert "not empty" in result.output and "--resume" in result.output


def test_wrong_root_and_missing_split(tmp_path):
    result = cli("generate", "--voc", tmp_path, "--n", 1, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "not a PASCAL VOC folder" in result.output
    voc = make_voc(tmp_path / "v", splits=("train",))
    result = cli("generate", "--voc", voc, "--n", 1, "--out", tmp_path / "o", "--split", "val")
    assert result.exit_code == 1 and "val.txt: split list not found" in result.output


def test_bad_items_are_skipped_and_reported(tmp_path):
    voc = make_voc(tmp_path / "v", sizes=[(48, 64)] * 5)
    (voc / "ImageSets/Segmentation/train.txt").write_text("img0\nghost\nimg1\nimg2\nimg3\nimg4\n")
    (voc / "JPEGImages/img1.jpg").write_bytes(b"garbage, not a JPEG")
    write_palette_png(voc / "SegmentationClass/img2.png", np.zeros((10, 12), np.uint8))
    write_palette_png(voc / "SegmentationClass/img3.png", np.zeros((48, 64), np.uint8))
    out = tmp_path / "out"
    result = cli("generate", "--voc", voc, "--n", 2, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    reasons = {Path(row["file"]).name: row["reason"] for row in report["skipped_items"]}
    assert reasons.keys() == {"ghost.jpg", "img1.jpg", "img2.png"}
    assert "missing" in reasons["ghost.jpg"] and "cannot read image" in reasons["img1.jpg"]
    assert reasons["img2.png"] == "mask is 12x10 but its image is 64x48"
    assert report["background_only"] == ["img3"]
    assert "ghost.jpg: image listed in the split is missing" in result.output
    assert "4 of 4 images" in result.output and "3 source items skipped" in result.output
    for line in (out / "records.jsonl").read_text().splitlines():
        assert json.loads(line)["fg"] in ("img0", "img4")  # img3 is background only


def test_no_usable_class_fails(tmp_path):
    voc = make_voc(tmp_path / "v", sizes=[(48, 64)] * 2)
    for i in range(2):
        write_palette_png(voc / f"SegmentationClass/img{i}.png", np.zeros((48, 64), np.uint8))
    result = cli("generate", "--voc", voc, "--n", 1, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "no usable foreground" in result.output
    assert "VOC split 'train'" in result.output


def test_run_that_produces_nothing_exits_non_zero(tmp_path):
    voc = make_voc(tmp_path / "v", sizes=[(48, 64)] * 2)
    jpeg = voc / "JPEGImages/img1.jpg"
    data = jpeg.read_bytes()
    jpeg.write_bytes(data[: len(data) * 2 // 3])  # the header reads, the pixels do not
    out = tmp_path / "out"
    result = cli("generate", "--voc", voc, "--n", 2, "--out", out, "-q")
    assert result.exit_code == 1 and "nothing could be generated" in result.output
    report = json.loads((out / "report.json").read_text())
    assert len(report["failed"]) == 4
    assert all(Path(row["file"]).name == "img1.jpg" for row in report["failed"])
    assert "img1.jpg: cannot read image" in result.output


def test_default_root_is_the_embedded_sample(monkeypatch, tmp_path):
    monkeypatch.setattr(blursynth, "__file__", str(tmp_path / "pkg" / "__init__.py"))
    with pytest.raises(BlursynthError, match="embedded VOC sample is not there") as info:
        default_voc_root()
    assert str(tmp_path / "datasets" / "embedded") in str(info.value)


def test_help():
    for args in (["--help"], ["generate", "--help"], ["preview", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0 and "Usage:" in result.output
    assert "generate" in cli("--help").output and "preview" in cli("--help").output


def test_preview_contact_sheet(reference, tmp_path):
    sheet = contact_sheet(reference, tmp_path / "sheet.png", rows=4, tile_height=64)
    image = read_image_u8(sheet)
    assert image.shape[0] == 4 * (64 + 22)
    result = cli("preview", reference, "--out", tmp_path / "cli.png", "--rows", 2)
    assert result.exit_code == 0 and (tmp_path / "cli.png").is_file()
    result = cli("preview", tmp_path, "--out", tmp_path / "none.png")
    assert result.exit_code == 1 and "is this a generate output" in result.output


def test_preview_dispatches_patch_datasets(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("blursynth.patch_preview")
    fake.patch_grid = lambda folder, out: calls.append((Path(folder), Path(out)))
    fake.tile_grid = lambda folder, out: calls.append(("tiles", Path(folder)))
    monkeypatch.setitem(sys.modules, "blursynth.patch_preview", fake)
    monkeypatch.setattr(blursynth, "patch_preview", fake, raising=False)
    (tmp_path / "manifest.json").write_text("{}")
    result = cli("preview", tmp_path, "--out", tmp_path / "grid.png")
    assert result.exit_code == 0 and calls == [(tmp_path, tmp_path / "grid.png")]


def _hf_energy(image_u8: np.ndarray, region: np.ndarray) -> float:
    grey = cv2.cvtColor(image_u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    lap = cv2.Laplacian(grey, cv2.CV_32F, borderType=cv2.BORDER_REFLECT_101)
    return float((lap[region] ** 2).mean())


@pytest.mark.realdata
def test_real_voc_blurred_region_loses_high_frequencies(voc_sample, tmp_path):
    """Mean squared Laplacian, 10 px away from the gt boundary, relative to the same region
    of the unblurred composite: the blurred region loses most of it, the sharp one none.

    (Comparing blurred with sharp regions of the output directly fails on real images whose
    sharp region is smooth, e.g. a blurred aeroplane over a clear sky.)
    """
    out = tmp_path / "out"
    result = cli(
        "generate",
        "--voc",
        voc_sample,
        "--split",
        "trainval",
        "--n",
        4,
        "--out",
        out,
        "--seed",
        1,
        "-q",
    )
    assert result.exit_code == 0, result.output
    ds = VOCSegmentation(voc_sample, "trainval")
    away = np.ones((21, 21), np.uint8)
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 8
    for line in lines:
        r = SampleRecord.from_dict(json.loads(line))
        image = read_image_u8(out / "image" / f"{r.name}.png")
        gt = read_mask_u8(out / "gt" / f"{r.name}.png") >= 128
        blurred = cv2.erode(gt.astype(np.uint8), away).astype(bool)
        sharp = cv2.erode((~gt).astype(np.uint8), away).astype(bool)
        assert blurred.sum() > 1000 and sharp.sum() > 1000, r.name
        fg, labels = ds.load(r.fg)
        (fy0, fx0, fy1, fx1), (by0, bx0, by1, bx1) = r.fg_box, r.bg_box
        mask = object_mask(labels[fy0:fy1, fx0:fx1], r.cls)
        bg = read_image(ds.image_path(r.bg))[by0:by1, bx0:bx1]
        plain, _ = render_motion(fg[fy0:fy1, fx0:fx1], bg, mask, np.ones((1, 1)))
        plain = np.rint(plain * 255).astype(np.uint8)
        kept_blurred = _hf_energy(image, blurred) / _hf_energy(plain, blurred)
        kept_sharp = _hf_energy(image, sharp) / _hf_energy(plain, sharp)
        assert kept_blurred < 0.5 and kept_sharp > 0.95, (r.name, kept_blurred, kept_sharp)


def test_negative_seed_is_refused_before_any_work(tmp_path):
    # SeedSequence takes no negative entropy: this used to end in a numpy traceback
    result = CliRunner().invoke(
        main, ["generate", "--n", "1", "--out", str(tmp_path / "o"), "--seed", "-1"]
    )
    assert result.exit_code == 2 and "--seed" in result.output
    with pytest.raises(BlursynthError, match="--seed must be >= 0, got -1"):
        generate(tmp_path / "o", n=1, seed=-1)
    assert not (tmp_path / "o").exists()


def test_resume_with_a_smaller_n_is_refused(voc, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    result = cli("generate", "--voc", voc, "--n", N - 1, "--out", out, "--seed", 5, "--resume")
    assert result.exit_code == 1
    assert f"cannot resume with --n {N - 1}" in result.output and f"{N:04d}" in result.output
    # a larger --n extends the run
    result = cli(
        "generate", "--voc", voc, "--n", N + 1, "--out", out, "--seed", 5, "--resume", "-q"
    )
    assert result.exit_code == 0, result.output
    assert len((out / "records.jsonl").read_text().splitlines()) == 2 * (N + 1)


CAMERA = ["--motion-kernel", "shake", "--defocus-kernel", "disk", "--linear-light", "--noise"]


def test_camera_options_render_reproducibly_whatever_the_jobs(voc, reference, tmp_path):
    """Shake, disk, linear light, noise and JPEG: same bytes for 1 and 2 workers, every
    image re-rendered from its record, the ground truth that of the plain run's geometry."""
    res = cli("generate", "--voc", voc.parent, "--n", N, "--out", tmp_path / "cam1", "--seed", 5)
    assert res.exit_code == 0  # the report's models, for comparison
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"camera{jobs}"
        args = ["--voc", voc.parent, "--n", N, "--out", out, "--seed", 5, "-j", jobs]
        res = cli("generate", *args, *CAMERA, "--jpeg", 75, "-q")
        assert res.exit_code == 0, res.output
        outs.append(out)
    assert tree_bytes(outs[0]) == tree_bytes(outs[1])
    records = [json.loads(line) for line in (outs[0] / "records.jsonl").read_text().splitlines()]
    dataset = VOCSegmentation(voc.parent, "train")
    for d in records:
        record = SampleRecord.from_dict(d)
        arrays = rerender(record, dataset)
        assert np.array_equal(
            arrays["image"], read_image_u8(outs[0] / "image" / f"{record.name}.png")
        )
        assert record.jpeg == 75 and record.linear_light and record.noise_seed is not None
        assert (record.blur.get("trajectory") is not None) == (record.model == "motion")
        assert (record.blur.get("radius") is not None) == (record.model == "defocus")
        if record.model == "defocus":  # the object mask is the truth, whatever the camera
            plain = read_mask_u8(tmp_path / "cam1" / "gt" / f"{record.name}.png")
            assert np.array_equal(arrays["gt"], plain)
    # and the images differ from the report's models: noise and JPEG were applied
    plain = read_image_u8(tmp_path / "cam1" / "image" / "defocus0001.png")
    camera = read_image_u8(outs[0] / "image" / "defocus0001.png")
    assert np.abs(plain.astype(int) - camera).mean() > 1


def test_a_resume_with_other_camera_options_is_refused(voc, tmp_path):
    out = tmp_path / "o"
    assert cli("generate", "--voc", voc.parent, "--n", 2, "--out", out, *CAMERA).exit_code == 0
    res = CliRunner().invoke(
        main, ["generate", "--voc", str(voc.parent), "--n", "2", "--out", str(out), "--resume"]
    )
    assert (
        res.exit_code == 1
        and "cannot resume: params.defocus_kernel, params.linear_light" in res.output
    )
    assert "params.motion_kernel, params.noise" in res.output
    assert "params.background" not in res.output  # the same in both: not named


def test_a_run_from_before_an_option_existed_resumes(voc, tmp_path):
    """A camera option missing from an interrupted run's run.json is at its default (the run
    predates it): the resume goes on, and the finished run is the uninterrupted one."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    for out, n in ((full, 3), (cut, 2)):
        assert cli("generate", "--voc", voc.parent, "--n", n, "--out", out, *CAMERA).exit_code == 0
    run = json.loads((cut / "run.json").read_text())
    del run["params"]["background"]
    (cut / "run.json").write_text(json.dumps(run))
    res = cli("generate", "--voc", voc.parent, "--n", 3, "--out", cut, *CAMERA, "--resume")
    assert res.exit_code == 0, res.output
    for f in sorted(full.rglob("*.png")):
        assert f.read_bytes() == (cut / f.relative_to(full)).read_bytes()


def test_noise_ranges_are_drawn_from_recorded_and_checked(voc, tmp_path):
    """--noise-shot / --noise-read: every record's noise inside the given ranges, the
    ranges in run.json (a resume without them is refused); bad ranges are usage errors."""
    out = tmp_path / "n"
    ranges = ["--noise-shot", 1e-3, 2e-2, "--noise-read", 1e-5, 3e-4]
    res = cli("generate", "--voc", voc.parent, "--n", 3, "--out", out, "--noise", *ranges)
    assert res.exit_code == 0, res.output
    for line in (out / "records.jsonl").read_text().splitlines():
        d = json.loads(line)
        assert 1e-3 <= d["noise_a"] < 2e-2 and 1e-5 <= d["noise_b"] < 3e-4
    params = json.loads((out / "run.json").read_text())["params"]
    assert params["noise_a"] == [1e-3, 2e-2] and params["noise_b"] == [1e-5, 3e-4]
    again = ["generate", "--voc", str(voc.parent), "--n", "3", "--out", str(out)]
    res = CliRunner().invoke(main, [*again, "--noise", "--resume"])
    assert (
        res.exit_code == 1 and "cannot resume: params.noise_a, params.noise_b differ" in res.output
    )
    for bad, says in (
        (["--noise-shot", "1e-3", "1e-2"], "add it"),  # without --noise
        (["--noise", "--noise-read", "1e-3", "1e-5"], "lo <= hi"),
        (["--noise", "--noise-shot", "0", "1e-2"], "must be > 0"),
    ):
        res = CliRunner().invoke(main, [*again[:-1], str(tmp_path / "bad"), *bad])
        assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output


def test_blur_strength_ranges_are_drawn_from_recorded_and_checked(voc, tmp_path):
    """--motion-length / --defocus-sigma / --disk-radius: every record inside its range,
    the kernels as wide as the draws, the ranges in run.json (a resume without them is
    refused); bad ranges and options for the other defocus kernel are usage errors."""
    from blursynth.generate import record_kernels

    out, disk = tmp_path / "s", tmp_path / "d"
    base = ["generate", "--voc", voc.parent, "--n", 3, "--model", "all", "-q"]
    strong = ["--motion-length", 20, 30, "--defocus-sigma", 3, 4]
    assert cli(*base, "--out", out, *strong).exit_code == 0
    records = [
        SampleRecord.from_dict(json.loads(line))
        for line in (out / "records.jsonl").read_text().splitlines()
    ]
    for r in records:
        if r.model in ("motion", "pan", "mixed"):
            assert 20 <= r.blur.get("length") < 30
            assert np.hypot(*record_kernels(r)[0].shape) >= 19  # a line of >= 20 px, not 5-15
        if r.model in ("defocus", "mixed"):
            assert 3 <= r.blur.get("sigma1") < 4
    params = json.loads((out / "run.json").read_text())["params"]
    assert params["length"] == [20, 30] and params["sigma1"] == [3, 4]
    res = cli(*base, "--out", disk, "--defocus-kernel", "disk", "--disk-radius", 6, 7)
    assert res.exit_code == 0, res.output
    lines = (disk / "records.jsonl").read_text().splitlines()
    radii = [json.loads(x).get("radius") for x in lines]
    assert all(6 <= r < 7 for r in radii if r is not None) and any(radii)
    res = CliRunner().invoke(main, [*map(str, base), "--out", str(out), "--resume"])
    assert res.exit_code == 1 and "params.length, params.sigma1 differ" in res.output
    for bad, says in (
        (["--disk-radius", "2", "4"], "add it"),  # without --defocus-kernel disk
        (["--defocus-kernel", "disk", "--defocus-sigma", "1", "2"], "--disk-radius"),
        (["--motion-length", "9", "3"], "lo <= hi"),
        (["--motion-length", "0", "3"], "length must be >= 1"),
        (["--defocus-kernel", "disk", "--disk-radius", "0.1", "1"], "radius must be >= 0.5"),
    ):
        res = CliRunner().invoke(main, [*map(str, base), "--out", str(tmp_path / "bad"), *bad])
        assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output


def test_uniform_images_are_sharp_or_blurred_everywhere(voc, tmp_path):
    """--uniform-share 1: no object; sharp images are the background crop itself, blurred
    ones are blurred everywhere; the truth says so; each re-renders from its record."""
    out = tmp_path / "u"
    assert (
        cli("generate", "--voc", voc.parent, "--n", 4, "--out", out, "--uniform-share", 1).exit_code
        == 0
    )
    dataset = VOCSegmentation(voc.parent, "train")
    kinds = set()
    for line in (out / "records.jsonl").read_text().splitlines():
        record = SampleRecord.from_dict(json.loads(line))
        kinds.add(record.uniform)
        gt = read_mask_u8(out / "gt" / f"{record.name}.png")
        image = read_image_u8(out / "image" / f"{record.name}.png")
        assert np.array_equal(rerender(record, dataset)["image"], image)
        y0, x0, y1, x1 = record.bg_box
        bg = read_image_u8(dataset.image_path(record.bg))[y0:y1, x0:x1]
        if record.uniform == "sharp":
            assert (gt == 0).all() and np.array_equal(image, bg)
        else:
            assert (gt == 255).all() and not np.array_equal(image, bg)
            # blurring removes high frequencies: the Laplacian's energy drops
            lap = [cv2.Laplacian(x.astype(np.float32), cv2.CV_32F).var() for x in (image, bg)]
            assert lap[0] < 0.8 * lap[1]
    assert kinds <= {"sharp", "blurred"} and None not in kinds


def test_the_uniform_share_is_drawn_per_image():
    from blursynth.sampling import SampleParams, sample_record
    from blursynth.sources.voc import VOCItem

    items = [VOCItem("a", 100, 120, {3: (10, 10, 60, 60)}), VOCItem("b", 100, 120, {})]
    share = SampleParams(uniform_share=0.25)
    records = [sample_record(items, "motion", i, 0, share) for i in range(400)]
    uniform = [r.uniform for r in records if r.uniform]
    assert 0.18 < len(uniform) / 400 < 0.32
    assert 0.3 < uniform.count("sharp") / len(uniform) < 0.7
    plain = [sample_record(items, "motion", i, 0) for i in range(20)]
    assert all(r.uniform is None and "uniform" not in r.to_dict() for r in plain)
    assert [(r.fg_box, r.blur.get("length")) for r in plain] == [
        (r.fg_box, r.blur.get("length")) for r in records[:20]
    ]


def test_mixed_images_hold_every_class_and_feed_three_class_tiles(voc, tmp_path):
    """--model all: mixed images with a classes/ map (binary truth = classes != 0) that
    re-render from their records; `tiles --source synth --classes 3` takes their per-pixel
    classes, the other images' from their blur type; preview draws the map."""
    out = tmp_path / "g"
    args = ["--voc", voc.parent, "--n", 3, "--out", out, "--model", "all", "--seed", 2]
    assert cli("generate", *args, "-q").exit_code == 0
    dataset = VOCSegmentation(voc.parent, "train")
    mixed = sorted((out / "classes").glob("*.png"))
    assert [p.stem for p in mixed] == ["mixed0001", "mixed0002", "mixed0003"]
    records = {
        d["name"]: SampleRecord.from_dict(d)
        for d in map(json.loads, (out / "records.jsonl").read_text().splitlines())
    }
    for path in mixed:
        classes = read_mask_u8(path)
        assert classes.max() <= 2
        assert np.array_equal(classes != 0, read_mask_u8(out / "gt" / path.name) > 0)
        record = records[path.stem]
        assert record.fg2 is not None and record.cls2 is not None and record.blur.get("sigma1")
        arrays = rerender(record, dataset)
        assert np.array_equal(arrays["classes"], classes)
        assert np.array_equal(arrays["image"], read_image_u8(out / "image" / path.name))
    assert not (out / "classes" / "motion0001.png").exists()

    rows = synth_tiles3(out, tmp_path / "t")
    for split_rows in rows.values():
        for code, allowed in ((0, {0, 1, 255}), (1, {0, 2, 255}), (2, {0, 1, 2, 255})):
            sel = split_rows["blur_type"] == code
            assert set(np.unique(split_rows["label"][sel])) <= allowed
    mixed_labels = np.concatenate([r["label"][r["blur_type"] == 2].ravel() for r in rows.values()])
    assert {1, 2} <= set(np.unique(mixed_labels))  # both blur types inside mixed images
    sheet = tmp_path / "sheet.png"
    assert cli("preview", out, "--out", sheet, "--rows", 9).exit_code == 0
    assert read_image_u8(sheet).shape[1] > 3 * 100  # the mixed rows have a third panel


def test_synth_source_reads_mixed_truth_and_refuses_other_names(voc, tmp_path):
    out = tmp_path / "g"
    assert (
        cli("generate", "--voc", voc.parent, "--n", 1, "--out", out, "--model", "all").exit_code
        == 0
    )
    source = SynthSource(out)
    by_stem = {it.stem: it for it in source.items}
    assert source.load_classes(by_stem["motion0001"]) is None
    assert source.load_classes(by_stem["mixed0001"]).max() <= 2
    assert by_stem["mixed0001"].blur_type == "unknown"
    write_png(out / "classes" / "mixed0001.png", np.full((8, 8), 7, np.uint8))
    with pytest.raises(BlursynthError, match="classes map holds 7"):
        source.load_classes(by_stem["mixed0001"])
    shutil.copy(out / "image" / "motion0001.png", out / "image" / "photo.png")
    shutil.copy(out / "gt" / "motion0001.png", out / "gt" / "photo.png")
    with pytest.raises(
        BlursynthError, match="not named motion####, defocus####, mixed####, pan####"
    ):
        SynthSource(out)


def test_pan_images_keep_the_object_sharp_over_a_streaked_background(voc, tmp_path):
    """--model pan: a sharp object over a background blurred by the motion kernel (a shake
    trajectory here). The truth is the object mask (blurred = not the object), records
    re-render the files, the synth source reads the images as motion blur, and 3-class
    tiles label their blurred pixels motion."""
    out = tmp_path / "g"
    args = ["--voc", voc.parent, "--n", 3, "--out", out, "--model", "pan", "--seed", 4]
    assert cli("generate", *args, "--motion-kernel", "shake", "-q").exit_code == 0
    dataset = VOCSegmentation(voc.parent, "train")
    records = [
        SampleRecord.from_dict(json.loads(line))
        for line in (out / "records.jsonl").read_text().splitlines()
    ]
    assert [r.name for r in records] == ["pan0001", "pan0002", "pan0003"]
    for record in records:
        assert (
            record.blur.get("trajectory")
            and record.blur.get("sigma2") == 1.0
            and record.blur.get("sigma1") is None
        )
        arrays = rerender(record, dataset)
        assert np.array_equal(arrays["image"], read_image_u8(out / "image" / f"{record.name}.png"))
        labels = dataset.load(record.fg)[1]
        y0, x0, y1, x1 = record.fg_box
        mask = object_mask(labels[y0:y1, x0:x1], record.cls)
        assert np.array_equal(read_mask_u8(out / "gt" / f"{record.name}.png") > 0, mask < 0.5)
        # the background is streaked: it differs from the sharp background crop off the object
        by0, bx0, by1, bx1 = record.bg_box
        bg = read_image_u8(dataset.image_path(record.bg))[by0:by1, bx0:bx1]
        off = (mask == 0) & (cv2.erode((mask == 0).astype(np.uint8), np.ones((9, 9))) > 0)
        assert off.sum() > 100
        diff = np.abs(arrays["image"].astype(int) - bg.astype(int))[off]
        assert diff.mean() > 1.0
    source = SynthSource(out)
    assert {it.blur_type for it in source.items} == {"motion"}
    assert all(source.load_classes(it) is None for it in source.items)
    rows = synth_tiles3(out, tmp_path / "t")
    labels = np.concatenate([r["label"].ravel() for r in rows.values()])
    assert set(np.unique(labels)) in ({0, 1}, {0, 1, 255})


def test_pan_draws_leave_the_other_models_unchanged(voc, tmp_path):
    """Adding pan (spawn key 3) changes no byte of the other models: the motion images of an
    `--model all` run are those of a `--model motion` run."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        cli("generate", "--voc", voc.parent, "--n", 2, "--out", a, "--model", "all", "-q").exit_code
        == 0
    )
    assert (
        cli(
            "generate", "--voc", voc.parent, "--n", 2, "--out", b, "--model", "motion", "-q"
        ).exit_code
        == 0
    )
    names = sorted(p.name for p in (a / "image").iterdir())
    assert names == [f"{m}000{i}.png" for m in sorted(blurmodels.names()) for i in (1, 2)]
    for name in ("motion0001.png", "motion0002.png"):
        assert (a / "image" / name).read_bytes() == (b / "image" / name).read_bytes()


def test_png_encoding_changes_bytes_never_pixels_and_a_resume_keeps_the_runs(voc, tmp_path):
    """The default encoding (level 1, rle, one libpng filter per image) writes the pixels of
    the encoding before the options (level 6, zlib's default strategy, Pillow's adaptive
    filter), in files smaller than level 1 with those; a run made before the options
    (run.json without them) resumes in its own encoding, byte-identical to its uninterrupted
    self; one made with only --png-level resumes with the strategy and filter of its day;
    asking another encoding on a resume is refused, naming it."""
    from PIL import Image

    old = ["--png-level", 6, "--png-strategy", "default", "--png-filter", "adaptive"]
    day1 = ["--png-level", 1, "--png-strategy", "default", "--png-filter", "adaptive"]
    fast, slow, first = tmp_path / "fast", tmp_path / "slow", tmp_path / "first"
    for out, args in ((fast, []), (slow, old), (first, day1)):
        res = cli("generate", "--voc", voc.parent, "--n", 3, "--out", out, *args)
        assert res.exit_code == 0, res.output
    run = json.loads((fast / "run.json").read_text())
    assert (run["png_level"], run["png_strategy"], run["png_filter"]) == (1, "rle", "auto")
    pngs = [f.relative_to(slow) for f in sorted(slow.rglob("*.png"))]
    assert len(pngs) == 3 * 2 * 3  # image, gt, soft of 3 images per model
    for f in pngs:
        pixels = np.asarray(Image.open(slow / f))
        assert np.array_equal(pixels, np.asarray(Image.open(fast / f)))
        assert (slow / f).read_bytes() != (fast / f).read_bytes()
    size = {d: sum((d / f).stat().st_size for f in pngs) for d in (fast, first)}
    assert size[fast] < size[first]

    def interrupted(out: Path, args: list, drop: tuple[str, ...]) -> None:
        """A run made at --n 2 whose run.json does not name ``drop`` (made before them)."""
        assert cli("generate", "--voc", voc.parent, "--n", 2, "--out", out, *args).exit_code == 0
        run = json.loads((out / "run.json").read_text())
        (out / "run.json").write_text(json.dumps({k: v for k, v in run.items() if k not in drop}))

    cut = tmp_path / "cut"  # before every option
    interrupted(cut, old, ("png_level", "png_strategy", "png_filter"))
    resume = ["generate", "--voc", str(voc.parent), "--n", "3", "--out", str(cut), "--resume"]
    for option, value, key in (("--png-level", "1", "png_level"), ("--png-filter", "auto",
                               "png_filter")):  # fmt: skip
        res = CliRunner().invoke(main, [*resume, option, value])
        assert res.exit_code == 1 and f"{key} differ" in res.output
    assert CliRunner().invoke(main, resume).exit_code == 0
    part = tmp_path / "part"  # made when --png-level was the only option
    interrupted(part, day1, ("png_strategy", "png_filter"))
    assert cli("generate", "--voc", voc.parent, "--n", 3, "--out", part, "--resume").exit_code == 0
    for f in pngs:
        assert (slow / f).read_bytes() == (cut / f).read_bytes()
        assert (first / f).read_bytes() == (part / f).read_bytes()


def test_png_encoding_options_are_checked(voc, tmp_path):
    for kwargs, words in (
        ({"png_strategy": "zip"}, "--png-strategy must be one of default, filtered"),
        ({"png_filter": "best"}, "--png-filter must be one of adaptive, auto"),
        ({"png_level": 10}, "--png-level must be 0..9"),
    ):
        with pytest.raises(BlursynthError, match=words):
            generate(tmp_path / "x", n=1, voc=voc.parent, quiet=True, **kwargs)
        assert not (tmp_path / "x").exists()
