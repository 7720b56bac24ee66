"""The sampler: per-sample streams, ranges, crops that keep the object, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blursynth.sampling import (
    SampleParams,
    SampleRecord,
    _offset_keeping,
    sample_record,
    sharp_truth_background,
)
from blursynth.sources.voc import VOCItem

ITEMS = [
    VOCItem("a", 375, 500, {15: (40, 100, 300, 260), 2: (0, 0, 50, 500)}),
    VOCItem("b", 500, 375, {8: (200, 10, 480, 370)}),
    VOCItem("c", 333, 500, {}),  # background only
    VOCItem("d", 281, 500, {1: (100, 50, 200, 450)}),
]


def test_same_seed_same_record_independent_streams():
    r1 = sample_record(ITEMS, "motion", 7, seed=3)
    assert r1 == sample_record(ITEMS, "motion", 7, seed=3)
    assert r1 != sample_record(ITEMS, "motion", 7, seed=4)
    assert r1 != sample_record(ITEMS, "motion", 8, seed=3)
    assert r1.spawn_key == (0, 7) and r1.name == "motion0008"
    d = sample_record(ITEMS, "defocus", 7, seed=3)
    assert d.spawn_key == (1, 7) and d.blur.get("length") is None and d.blur.get("sigma2") == 1.0


@pytest.mark.parametrize("model", ["motion", "defocus", "pan"])
def test_records_are_valid(model):
    params = SampleParams()
    by_id = {it.id: it for it in ITEMS}
    for index in range(200):
        r = sample_record(ITEMS, model, index, seed=11, params=params)
        fg, bg = by_id[r.fg], by_id[r.bg]
        assert r.fg != r.bg and r.cls in fg.classes and r.fg != "c"
        h, w = min(fg.height, bg.height), min(fg.width, bg.width)
        for box, item in ((r.fg_box, fg), (r.bg_box, bg)):
            y0, x0, y1, x1 = box
            assert (y1 - y0, x1 - x0) == (h, w)
            assert 0 <= y0 and 0 <= x0 and y1 <= item.height and x1 <= item.width
        if model == "motion":
            assert (
                5 <= r.blur.get("length") < 15
                and 0 <= r.blur.get("angle") < 180
                and r.blur.get("sigma1") is None
            )
            assert r.blur.get("sigma2") is None
        elif model == "pan":  # the background's streak, and eq. (2)'s edge softening
            assert (
                5 <= r.blur.get("length") < 15
                and 0 <= r.blur.get("angle") < 180
                and r.blur.get("sigma1") is None
            )
            assert r.blur.get("sigma2") == 1.0 and r.spawn_key == (3, index)
        else:
            assert 1 <= r.blur.get("sigma1") < 2 and r.blur.get("length") is None


def test_fg_crop_keeps_the_object():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        full = int(rng.integers(10, 60))
        crop = int(rng.integers(1, full + 1))
        lo = int(rng.integers(0, full))
        hi = int(rng.integers(lo + 1, full + 1))
        o = _offset_keeping(rng, lo, hi, crop, full)
        assert 0 <= o <= full - crop
        if hi - lo <= crop:
            assert o <= lo and hi <= o + crop  # the object is inside the crop
        else:
            assert lo <= o and o + crop <= hi  # the crop is inside the object


def test_json_round_trip():
    r = sample_record(ITEMS, "motion", 0, seed=0)
    back = SampleRecord.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r


def test_bad_arguments():
    with pytest.raises(ValueError, match="model"):
        sample_record(ITEMS, "zoom", 0, seed=0)
    with pytest.raises(ValueError, match="usable class"):
        sample_record([ITEMS[2]], "motion", 0, seed=0)
    with pytest.raises(ValueError, match="lo <= hi"):
        SampleParams(length=(9, 5))


def test_camera_options_draw_after_the_reports_parameters():
    """A run with the defaults draws what it always drew; options only add to a record."""
    camera = SampleParams(
        motion_kernel="shake", defocus_kernel="disk", linear_light=True, noise=True, jpeg=80
    )
    for model in ("motion", "defocus"):
        plain = sample_record(ITEMS, model, 3, seed=1)
        rich = sample_record(ITEMS, model, 3, seed=1, params=camera)
        for name in ("fg", "bg", "cls", "fg_box", "bg_box"):
            assert getattr(rich, name) == getattr(plain, name), name
        for name in ("length", "angle", "sigma2"):
            assert rich.blur.get(name) == plain.blur.get(name), name
        assert rich.linear_light is True and rich.jpeg == 80
        assert 1e-4 <= rich.noise_a <= 1e-2 and 1e-6 <= rich.noise_b <= 1e-4
        assert set(plain.to_dict()) == set(SampleRecord.from_dict(plain.to_dict()).to_dict())
        assert "trajectory" not in plain.to_dict() and "noise_seed" not in plain.to_dict()
        again = SampleRecord.from_dict(json.loads(json.dumps(rich.to_dict())))
        assert again == rich  # the trajectory survives JSON as a tuple of pairs
    shake = sample_record(ITEMS, "motion", 3, seed=1, params=camera)
    assert len(shake.blur.get("trajectory")) == 33 and shake.blur.get("radius") is None
    disk = sample_record(ITEMS, "defocus", 3, seed=1, params=camera)
    assert (
        2 <= disk.blur.get("radius") < 4
        and disk.blur.get("sigma1") is None
        and disk.blur.get("trajectory") is None
    )


def test_camera_options_are_checked():
    with pytest.raises(ValueError, match="motion kernel must be one of"):
        SampleParams(motion_kernel="zigzag")
    with pytest.raises(ValueError, match="defocus kernel must be one of"):
        SampleParams(defocus_kernel="bokeh")
    with pytest.raises(ValueError, match="JPEG quality"):
        SampleParams(jpeg=101)
    assert "motion_kernel" not in SampleParams().run_dict()  # a default run.json is unchanged
    assert SampleParams(noise=True).run_dict()["noise_a"] == (1e-4, 1e-2)
    with pytest.raises(ValueError, match="background must be one of"):
        SampleParams(background="studio")
    assert SampleParams(background="own").run_dict()["background"] == "own"


@pytest.mark.parametrize("model", ["motion", "defocus", "mixed", "pan"])
def test_own_background_is_the_foregrounds_photograph_and_crop(model):
    own = sample_record(ITEMS, model, 2, seed=5, params=SampleParams(background="own"))
    other = sample_record(ITEMS, model, 2, seed=5)
    assert own.bg == own.fg and own.bg_box == own.fg_box and own.background == "own"
    assert other.background is None and "background" not in other.to_dict()
    assert own.fg == other.fg  # drawn first: the same photograph
    assert SampleRecord.from_dict(json.loads(json.dumps(own.to_dict()))) == own


def test_backgrounds_come_from_the_pool_given():
    """backgrounds=[...]: every background is drawn from it (another image than the
    foreground when it can be); with the own background, the scene too."""
    for model in ("motion", "defocus", "mixed", "pan"):
        for i in range(12):
            r = sample_record(ITEMS, model, i, seed=3, backgrounds=[1])
            assert r.bg == ITEMS[1].id
            own = sample_record(
                ITEMS, model, i, seed=3, params=SampleParams(background="own"), backgrounds=[1, 2]
            )
            assert own.fg in (ITEMS[1].id, ITEMS[2].id) and own.bg == own.fg
    with pytest.raises(ValueError, match="no item may serve as background"):
        sample_record(ITEMS, "motion", 0, seed=3, backgrounds=[])
    with pytest.raises(ValueError, match="background sharpness must be in"):
        SampleParams(min_background_sharpness=1.5)


def test_sharp_truth_scope_filters_only_the_backgrounds_called_sharp():
    """sharp_background_for="sharp-truth": the pool serves the motion images and the sharp
    uniform images; defocus, pan, mixed and blurred uniform images draw from every image."""
    params = SampleParams(
        uniform_share=0.5, min_background_sharpness=0.2, sharp_background_for="sharp-truth"
    )
    filtered, free = set(), set()
    for model in ("motion", "defocus", "mixed", "pan"):
        for i in range(40):
            r = sample_record(ITEMS, model, i, seed=3, params=params, backgrounds=[1])
            sharp = r.uniform == "sharp" or (model == "motion" and r.uniform is None)
            assert sharp == sharp_truth_background(model, r.uniform)
            (filtered if sharp else free).add((model, r.uniform, r.bg))
            if sharp:
                assert r.bg == ITEMS[1].id
    assert {m for m, _, _ in filtered} >= {"motion", "defocus", "pan"}  # uniform sharp ones
    assert {u for _, u, _ in free} >= {None, "blurred"}
    assert len({bg for _, _, bg in free}) > 1  # not held to the pool
    with pytest.raises(ValueError, match="sharp backgrounds must be for one of"):
        SampleParams(sharp_background_for="motion")
    # the default scope is every rendering: the run draws what it drew before the option
    every = SampleParams(uniform_share=0.5, min_background_sharpness=0.2)
    assert every.run_dict()["sharp_background_for"] == "every"
    for i in range(8):
        r = sample_record(ITEMS, "defocus", i, seed=3, params=every, backgrounds=[1])
        assert r.bg == ITEMS[1].id
