"""The package's shape: no torch in the data package, one registry, old checkpoints still load."""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _trees import make_patch_dataset

import blursynth
from blursynth_train import choices
from blursynth_train.checkpoint import load_model
from blursynth_train.fit import FitConfig, TrainState, fit
from blursynth_train.models import BlurNet, ModelConfig, config_from_dict, model_kinds

LEGACY = Path(__file__).parent / "data" / "legacy-blurnet-last.pt"
"""``last.pt`` of a 6-iteration run written by the code before model families and
``TrainState`` (tiny channels; made with ``tests/data/README.md``'s recipe)."""


def test_importing_every_blursynth_module_leaves_torch_out():
    names = [m.name for m in pkgutil.walk_packages(blursynth.__path__, "blursynth.")]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(names) > 15 and out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("cli", ["blursynth.cli", "blursynth_train.cli"])
def test_the_clis_start_without_scipy_or_torch(cli):
    """Every command's start (``--help`` too) imports neither: scipy costs ~0.4 s a call,
    torch seconds; the commands that need them import them."""
    code = f"import sys, {cli}\nprint('scipy' in sys.modules, 'torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False", out.stderr


def test_cli_model_choices_are_the_registry():
    from blursynth_train.weights import NAMED

    assert choices.MODEL_KINDS == model_kinds()
    assert choices.NAMED_WEIGHTS == tuple(NAMED)


def test_model_config_round_trips_through_the_registry():
    config = ModelConfig(patch_size=15)
    assert config_from_dict(config.to_dict()) == config
    legacy = {k: v for k, v in config.to_dict().items() if k != "kind"}
    assert config_from_dict(legacy) == config  # configs saved before families: blurnet


def test_a_checkpoint_written_before_model_families_loads():
    model, payload = load_model(LEGACY)
    assert isinstance(model, BlurNet) and "kind" not in payload["model_config"]
    assert model.config.conv1_channels == 4
    state = TrainState.from_checkpoint(payload)  # the flat keys of the old ``extra``
    assert state.iteration == 6 and state.best_iteration == 3 and state.samples == 6 * 16


def test_a_run_written_before_train_state_resumes(tmp_path, monkeypatch):
    """Resume a legacy ``last.pt``: its weights, optimizer, loop state and RNG carry on."""
    import blursynth_train.models as models

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(LEGACY, run / "last.pt")
    family = models.get_family("blurnet")
    tiny = lambda params, options: ModelConfig(conv1_channels=4, conv2_channels=4, fc_units=8)  # noqa: E731
    monkeypatch.setitem(
        models._FAMILIES,
        "blurnet",
        family.__class__(**{**family.__dict__, "config_for_dataset": tiny}),
    )
    ds = make_patch_dataset(tmp_path / "ds", n_train=128, n_val=64)
    torch.set_num_threads(1)
    result = fit(
        FitConfig(
            datasets=str(ds),
            out=str(run),
            resume=True,
            force=True,
            iterations=9,
            eval_every=3,
            batch_size=16,
            workers=0,
            quiet=True,
        )
    )
    assert result.iteration == 9 and result.best_iteration >= 3
    saved = torch.load(run / "last.pt", weights_only=True)
    assert saved["extra"]["state"]["iteration"] == 9  # now under one key
    assert json.loads((run / "summary.json").read_text())["iteration"] == 9


def test_checkpoints_carry_the_state_under_one_key(tmp_path):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    fit(
        FitConfig(
            datasets=str(ds),
            out=str(tmp_path / "run"),
            iterations=2,
            eval_every=2,
            batch_size=8,
            workers=0,
            quiet=True,
        )
    )
    extra = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["extra"]
    assert set(extra) == {
        "state",
        "manifest_sha256",
        "rng",
        "scheduler",
    }  # + val_manifest_sha256 with --val-dataset
    assert set(extra["state"]) == set(TrainState.__dataclass_fields__)


def _every_module() -> list[Path]:
    import blursynth_train

    roots = [Path(blursynth.__file__).parent, Path(blursynth_train.__file__).parent]
    return sorted(p for root in roots for p in root.rglob("*.py"))


@pytest.mark.parametrize("path", _every_module(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_function_over_sixty_lines_and_no_module_over_six_hundred(path):
    """Code reads top to bottom: short functions (docstrings included) in modules a newcomer
    can read in one sitting; every module of both packages."""
    import ast

    text = path.read_text()
    assert len(text.splitlines()) <= 600, f"{path}: {len(text.splitlines())} lines"
    long = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long


def test_the_length_guard_sees_every_module():
    names = {p.name for p in _every_module()}
    assert len(names) > 60 and {"fit.py", "cli.py", "sampling.py", "motion.py"} <= names
