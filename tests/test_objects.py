"""``generate --objects``: any folder of photographs with object masks as scenes."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest
from _trees import make_objects, make_voc
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage

from blursynth.cli import main
from blursynth.errors import BlursynthError
from blursynth.generate import rerender, scene_sources
from blursynth.imageio import read_image_u8, read_mask_u8
from blursynth.sampling import SampleRecord, sharp_truth_background
from blursynth.sources.objects import ObjectFolder, SceneSources


def _invoke(*args):
    """``blursynth generate ARGS`` through the CLI, its result as it is."""
    return CliRunner().invoke(main, ["generate", *map(str, args)])


def _run(*args):
    res = CliRunner().invoke(main, ["generate", *map(str, args), "-q"])
    assert res.exit_code == 0, res.output
    return res


def _objects_with_blurred_photographs(root, stems):
    """The object folder of :func:`make_objects` with the photographs ``stems`` blurred on
    disk (an out-of-focus background)."""
    import cv2

    objects = make_objects(root)
    for stem in stems:
        path = objects / "image" / f"{stem}.jpg"
        cv2.imwrite(str(path), cv2.GaussianBlur(cv2.imread(str(path)), (0, 0), 3))
    return objects


def test_objects_follow_the_documented_rule(tmp_path):
    """2 % to 80 % of the image: a foreground; outside it: a background only."""
    folder = ObjectFolder(make_objects(tmp_path / "obj"))
    items = {i: folder.scan_one(i) for i in folder.ids}
    assert {i for i, it in items.items() if it.classes} == {"o0", "o1", "o4"}
    assert items["o2"].classes == {} and items["o3"].classes == {}  # 1 % and 95 %
    y0, x0, y1, x1 = items["o0"].classes[1]
    assert (y1 - y0) * (x1 - x0) == pytest.approx(0.25 * 48 * 64, rel=0.1)
    image, labels = folder.load("o0")
    assert image.shape == (48, 64, 3) and set(np.unique(labels)) == {0, 1}


def test_polarity_threshold_and_bad_items(tmp_path):
    root = make_objects(tmp_path / "obj", fractions=(0.3, 0.3))
    inverted = ObjectFolder(root, polarity="background-white")
    assert inverted.scan_one("o0").classes == {1: (0, 0, 48, 64)}  # the 70 % around it
    assert np.array_equal(inverted.load("o0")[1], 1 - ObjectFolder(root).load("o0")[1])
    mask = np.asarray(Image.open(root / "mask" / "o1.png"))
    Image.fromarray((mask // 2).astype(np.uint8)).save(root / "mask" / "o1.png")  # grey 127
    assert ObjectFolder(root).scan_one("o1").classes == {}
    assert 1 in ObjectFolder(root, threshold=100).scan_one("o1").classes
    (root / "mask" / "o0.png").unlink()
    with pytest.raises(BlursynthError, match="o0.png: image has no mask"):
        ObjectFolder(root).scan_one("o0")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "mask" / "o0.png")
    with pytest.raises(BlursynthError, match="mask is 10x10 but its image is 64x48"):
        ObjectFolder(root).scan_one("o0")
    (tmp_path / "half" / "image").mkdir(parents=True)
    with pytest.raises(BlursynthError, match="half: expected .* 'mask/' is missing"):
        ObjectFolder(tmp_path / "half")


def test_generate_from_object_folders_and_voc_together(tmp_path):
    """Two sources in one run: ids carry the source, every image re-renders from its record,
    and the run is the same bytes for 1 and 2 workers."""
    objects = make_objects(tmp_path / "obj")
    voc = make_voc(tmp_path / "voc")
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"o{jobs}"
        _run("--voc", voc.parent, "--objects", objects, "--n", 4, "--out", out, "-j", jobs)
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*.png"))
    assert len(files) == 24  # 8 images x image/gt/soft
    assert all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files)
    records = [json.loads(x) for x in (outs[0] / "records.jsonl").read_text().splitlines()]
    assert {r["fg"].split(":")[0] for r in records} <= {"0", "1"}
    assert all(r["class_name"] == "object" for r in records if r["fg"].startswith("1:"))
    sources = scene_sources(voc.parent, "train", [objects])
    for d in records:
        record = SampleRecord.from_dict(d)
        arrays = rerender(record, sources)
        assert np.array_equal(
            arrays["image"], read_image_u8(outs[0] / "image" / f"{record.name}.png")
        )
        assert np.array_equal(arrays["gt"], read_mask_u8(outs[0] / "gt" / f"{record.name}.png"))
    run = json.loads((outs[0] / "run.json").read_text())
    assert run["objects"] == [str(objects)] and run["object_mask"]["threshold"] == 128


def test_objects_alone_and_a_resume_with_other_objects_is_refused(tmp_path):
    objects = make_objects(tmp_path / "obj")
    out = tmp_path / "out"
    _run("--objects", objects, "--n", 2, "--out", out)
    records = (out / "records.jsonl").read_text()
    assert '"fg": "o' in records and ":" not in json.loads(records.splitlines()[0])["fg"]
    res = CliRunner().invoke(
        main,
        ["generate", "--objects", str(objects), "--object-threshold", "9", "--n", "2"]
        + ["--out", str(out), "--resume"],
    )
    assert res.exit_code == 1 and "cannot resume: object_mask.threshold differ" in res.output


def test_a_folder_travels_to_workers_without_its_lists(tmp_path):
    root = make_objects(tmp_path / "obj", fractions=(0.3,) * 40)
    both = SceneSources([ObjectFolder(root), ObjectFolder(root)])
    light = pickle.loads(pickle.dumps(both))
    assert len(pickle.dumps(both)) < 1500 and light.ids == []
    assert light.image_path("1:o7") == root / "image" / "o7.jpg"
    assert np.array_equal(light.load("0:o3")[1], both.load("0:o3")[1])


@pytest.mark.realdata
def test_generate_from_real_saliency_photographs(tmp_path):
    """ECSSD and DUTS (../shared/data): real objects over real backgrounds."""
    from conftest import shared_data

    ecssd, duts = shared_data("ecssd"), shared_data("duts-subset")
    out = tmp_path / "out"
    _run("--objects", ecssd, "--objects", duts, "--n", 3, "--out", out, "-j", 2)
    records = (out / "records.jsonl").read_text().splitlines()
    assert len(records) == 6  # motion and defocus, three each
    for d in map(json.loads, records):
        gt = read_mask_u8(out / "gt" / f"{d['name']}.png") > 0
        image = read_image_u8(out / "image" / f"{d['name']}.png")
        assert image.shape[:2] == gt.shape and 0.02 <= gt.mean() <= 0.98, d["name"]


def test_cards_of_synthetic_datasets_name_their_source_photographs(tmp_path):
    """generate's sources.json (folder names only) reaches the dataset card, with licences:
    CC0 for the embedded sample, the photographs' own otherwise."""
    embedded, objects = tmp_path / "e", tmp_path / "o"
    _run("--n", 4, "--out", embedded)
    _run("--objects", make_objects(tmp_path / "my-objects"), "--n", 4, "--out", objects)
    entries = json.loads((objects / "sources.json").read_text())
    assert entries == [
        {
            "kind": "objects",
            "root": "my-objects",
            "licence": "that of the source photographs (not checked by blursynth)",
        }
    ]
    for src, licence in ((embedded, "CC0 1.0"), (objects, "not checked by blursynth")):
        for command in ("patches", "tiles"):
            ds = tmp_path / f"{src.name}-{command}"
            res = CliRunner().invoke(
                main,
                [command, "--source", "synth", "--root", str(src), "--out", str(ds)]
                + ["--eval-images", "0", "-q"]
                + (["--train-patches", "300"] if command == "patches" else []),
            )
            assert res.exit_code == 0, res.output
            card = (ds / "README.md").read_text()
            assert "## Source photographs" in card and licence in card
            assert str(tmp_path) not in card  # no path of the building machine


def test_an_object_over_its_own_background(tmp_path):
    """--background own: the object stays in its own photograph and crop; a moving object
    smears over what was behind it (filled in), never over a sharp copy of itself, and
    every pixel the blur does not reach is the photograph's."""
    from blursynth.render import FILL_MARGIN

    objects = make_objects(tmp_path / "obj")
    for background in ("other", "own"):
        _run(
            "--objects",
            objects,
            "--n",
            3,
            "--model",
            "all",
            "--out",
            tmp_path / background,
            "--background",
            background,
            "-j",
            2,
        )
    read = lambda bg: [  # noqa: E731
        json.loads(x) for x in (tmp_path / bg / "records.jsonl").read_text().splitlines()
    ]
    other, own = read("other"), read("own")
    assert all("background" not in d for d in other)  # the report's records, unchanged
    sources = scene_sources(None, "train", [objects])
    for a, b in zip(other, own, strict=True):
        assert b["background"] == "own" and b["bg"] == b["fg"] and b["bg_box"] == b["fg_box"]
        assert a["fg"] == b["fg"]
        record = SampleRecord.from_dict(b)
        arrays = rerender(record, sources)
        image = read_image_u8(tmp_path / "own" / "image" / f"{record.name}.png")
        assert np.array_equal(arrays["image"], image)
        if record.model == "motion":
            # the same composite over the unfilled photograph differs only where the sharp
            # background shows through the moving object
            _, labels = sources.load(record.fg)
            y0, x0, y1, x1 = record.fg_box
            hole = ndimage.binary_dilation(
                labels[y0:y1, x0:x1] == record.cls, iterations=FILL_MARGIN + 1
            )
            soft = read_mask_u8(tmp_path / "own" / "soft" / f"{record.name}.png")
            through = hole & (soft < 255)
            pasted = rerender(dataclasses.replace(record, background=None), sources)["image"]
            diff = np.abs(image.astype(int) - pasted).max(axis=2)
            assert diff[~through].max() <= 1
            assert diff[through].max() > 10
    res = _invoke(
        "--objects", objects, "--n", "3", "--model", "all", "--out", tmp_path / "own", "--resume"
    )
    assert res.exit_code == 1 and "cannot resume" in res.output and "background" in res.output
    res = _invoke(
        "--objects", objects, "--n", "1", "--out", tmp_path / "x", "--background", "nowhere"
    )
    assert res.exit_code == 2 and "nowhere" in res.output


def test_only_photographs_with_a_sharp_background_serve_as_backgrounds(tmp_path):
    """--min-background-sharpness: the photographs whose background is out of focus (here
    o1 and o4, blurred on disk) are never a background; the count is in report.json; a
    threshold no photograph meets is a clear error."""
    objects = _objects_with_blurred_photographs(tmp_path / "obj", ("o1", "o4"))
    out = tmp_path / "out"
    _run("--objects", objects, "--n", 6, "--out", out, "--min-background-sharpness", 0.3, "-j", 2)
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert {r["bg"] for r in records} <= {"o0", "o2", "o3"}
    assert {r["fg"] for r in records} & {"o1", "o4"}  # they still serve as foregrounds
    assert json.loads((out / "report.json").read_text())["sharp_backgrounds"] == 3
    res = _invoke(
        "--objects",
        objects,
        "--n",
        "1",
        "--out",
        tmp_path / "none",
        "--min-background-sharpness",
        "1",
    )
    assert res.exit_code == 1 and "no photograph has a background of sharpness" in res.output
    assert "Traceback" not in res.output
    # refused before the folder was claimed: the same folder takes a new run, no --resume
    _run("--objects", objects, "--n", 1, "--out", tmp_path / "none")


def test_sharp_backgrounds_only_where_the_truth_calls_them_sharp(tmp_path):
    """--sharp-background-for sharp-truth: the out-of-focus photographs (o1, o4) never lie
    behind a motion image or a sharp uniform image, and still serve as the blurred
    background of the others; the option alone is a usage error."""
    objects = _objects_with_blurred_photographs(tmp_path / "obj", ("o1", "o4"))
    out = tmp_path / "out"
    scope = ("--min-background-sharpness", 0.3, "--sharp-background-for", "sharp-truth")
    _run(
        "--objects",
        objects,
        "--n",
        8,
        "--model",
        "all",
        "--uniform-share",
        0.4,
        "--out",
        out,
        *scope,
        "-j",
        2,
    )
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    sharp = [sharp_truth_background(r["model"], r.get("uniform")) for r in records]
    assert sum(sharp) >= 8 and not all(sharp)
    assert {r["bg"] for r, s in zip(records, sharp, strict=True) if s} <= {"o0", "o2", "o3"}
    assert {r["bg"] for r, s in zip(records, sharp, strict=True) if not s} & {"o1", "o4"}
    assert json.loads((out / "run.json").read_text())["params"]["sharp_background_for"] == (
        "sharp-truth"
    )
    res = _invoke(
        "--objects",
        objects,
        "--n",
        1,
        "--out",
        tmp_path / "x",
        "--sharp-background-for",
        "sharp-truth",
    )
    assert res.exit_code == 2 and "add it" in res.output and "Traceback" not in res.output
