"""The blur-model registry: stable spawn keys, refusals, and a model added by a class alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from blursynth import blurmodels
from blursynth.blurmodels import BlurModel, Rendering, register
from blursynth.blurmodels._base import _REGISTRY
from blursynth.generate import default_voc_root, generate, rerender
from blursynth.imageio import read_image_u8, read_mask_u8
from blursynth.sampling import SampleRecord
from blursynth.sources import SynthSource
from blursynth.sources.voc import VOCSegmentation


def test_models_keep_their_spawn_order_and_say_their_blur():
    assert blurmodels.names()[:4] == ("motion", "defocus", "mixed", "pan")  # new ones follow
    indices = [blurmodels.get(m).spawn_index for m in blurmodels.names()]
    assert indices[:4] == [0, 1, 2, 3] and indices == sorted(set(indices))
    assert {m: blurmodels.get(m).blur_type for m in blurmodels.names()[:4]} == {
        "motion": "motion", "defocus": "defocus", "mixed": None, "pan": "motion"
    }  # fmt: skip
    assert blurmodels.get("mixed").outputs == ("classes",) and blurmodels.get("mixed").objects == 2


@pytest.mark.parametrize(
    ("name", "index", "message"),
    [
        ("Zoom", 9, "lower-case letters"),
        ("motionx", 9, "clashes with 'motion'"),
        ("pa", 9, "clashes with 'pan'"),
        ("zoom", 3, "takes spawn index 3 of 'pan'"),
    ],
)
def test_a_clashing_model_is_refused(monkeypatch, name, index, message):
    monkeypatch.setattr(blurmodels._base, "_REGISTRY", dict(_REGISTRY))
    cls = type("Bad", (BlurModel,), {"name": name, "spawn_index": index, "blur_type": None})
    with pytest.raises(ValueError, match=message):
        register(cls)


class Still(BlurModel):
    """No blur at all: the object pasted sharp over a sharp background, darkened by a drawn
    gain (a field of its own). Truth: every pixel sharp."""

    name = "still"
    spawn_index = 9
    blur_type = "defocus"  # what --source synth reads; its images are all sharp anyway
    fields = ("gain",)

    def draw(self, rng, params):
        return {"gain": float(rng.uniform(0.5, 1.0))}

    def kernels(self, blur):
        return (np.full((1, 1), blur["gain"]),)

    def render(self, scene, kernels):
        m = scene.mask[..., None]
        image = (m * scene.fg + (1 - m) * scene.bg) * np.float32(kernels[0][0, 0])
        soft = np.zeros(scene.mask.shape, np.float32)
        return Rendering(image.astype(np.float32), soft, soft > 0)


def test_a_model_added_by_one_class_is_drawn_rendered_written_and_reread(monkeypatch, tmp_path):
    """What adding a file does: registered, the sampler draws its fields from its own spawn
    key, ``generate`` renders and writes it, ``records.jsonl`` round-trips and rerenders it."""
    monkeypatch.setattr(blurmodels._base, "_REGISTRY", dict(_REGISTRY))
    monkeypatch.setattr(blurmodels, "_REGISTRY", blurmodels._base._REGISTRY)
    register(Still)
    assert blurmodels.names()[-1] == "still"
    voc = VOCSegmentation(default_voc_root())
    report = generate(tmp_path / "run", n=2, model="still", seed=1, quiet=True)
    assert report.complete == 2
    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    back = SampleRecord.from_dict(json.loads(lines[0]))
    assert back.spawn_key == (9, 0) and set(back.blur) == {"gain"}
    assert 0.5 <= back.blur["gain"] < 1.0 and json.loads(lines[0])["length"] is None
    arrays = rerender(back, voc)
    assert not arrays["gt"].any()
    written = read_image_u8(tmp_path / "run" / "image" / "still0001.png")
    assert np.array_equal(written, arrays["image"])
    assert np.array_equal(read_mask_u8(tmp_path / "run" / "gt" / "still0001.png"), arrays["gt"])
    source = SynthSource(tmp_path / "run")
    assert source.blur_type_of("still0001") == "defocus"


def test_an_unknown_model_in_a_record_is_named():
    with pytest.raises(ValueError, match="blur model must be one of .*'zoom'"):
        SampleRecord.from_dict({"model": "zoom", "name": "zoom0001"})


def test_the_cli_offers_every_registered_model():
    from blursynth.cli import main

    res = CliRunner().invoke(main, ["generate", "--help"])
    assert all(m in res.output for m in blurmodels.names())


def test_resuming_model_all_renders_the_models_the_run_started_with(monkeypatch, tmp_path):
    """A model registered after a ``--model all`` run started does not join it on
    ``--resume``: the run completes with the models in its ``run.json``."""
    from test_generate_golden import RUNS, legacy_run

    from blursynth.cli import main

    monkeypatch.setattr(blurmodels._base, "_REGISTRY", dict(_REGISTRY))
    monkeypatch.setattr(blurmodels, "_REGISTRY", blurmodels._base._REGISTRY)
    register(Still)
    out = tmp_path / "camera"
    legacy_run(out)
    args = ["generate", "--out", str(out), "--resume", "-q", *RUNS["camera"]]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert len(list((out / "image").glob("*.png"))) == 16
    assert not list((out / "image").glob("still*"))
