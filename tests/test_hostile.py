"""Issue 25, the second hostile round: each case failed before its fix."""

from __future__ import annotations

import pytest
import torch
from _trees import make_patch_dataset
from click.testing import CliRunner

from blursynth_train import checkpoint
from blursynth_train.cli import main as train_cli
from blursynth_train.models import BlurNet, ModelConfig
from blursynth_train.weights import WEIGHTS_DIR, resolve_weights

TINY = ModelConfig(conv1_channels=4, conv2_channels=4, fc_units=8)


def _fit(ds, out, *extra):
    return CliRunner().invoke(
        train_cli,
        ["fit", str(ds), "--out", str(out), "--batch-size", "8", "--workers", "0", "-q", *extra],
    )


@pytest.mark.parametrize("lr", ["nan", "inf"])
def test_non_finite_options_are_refused(tmp_path, lr):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    res = _fit(ds, tmp_path / "run", "--lr", lr)
    assert res.exit_code == 2 and "lr must be a finite number" in res.output
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_diverging_run_stops_with_the_iteration_and_keeps_the_last_finite_checkpoint(tmp_path):
    ds = make_patch_dataset(tmp_path / "ds", n_train=64, n_val=32)
    run = tmp_path / "run"
    res = _fit(ds, run, "--iterations", "2", "--eval-every", "2")
    assert res.exit_code == 0, res.output
    before = (run / "last.pt").read_bytes()
    # 1e30 overflows the weights within a few steps: the loss becomes nan
    res = _fit(ds, run, "--iterations", "40", "--resume", "--lr", "1e30", "--eval-every", "20")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "is not finite at iteration" in res.output and "still holds iteration 2" in res.output
    assert (run / "last.pt").read_bytes() == before  # nothing non-finite was saved
    model, _ = checkpoint.load_model(run / "best.pt")
    assert all(v.isfinite().all() for v in model.state_dict().values() if v.is_floating_point())


def test_export_refuses_a_non_finite_model_and_its_own_source(tmp_path):
    model = BlurNet(TINY)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    bad = checkpoint.save_checkpoint(tmp_path / "bad.pt", model)
    res = CliRunner().invoke(train_cli, ["export", str(bad), "--out", str(tmp_path / "x.pt")])
    assert res.exit_code == 1 and "non-finite weights" in res.output
    assert not (tmp_path / "x.pt").exists()
    good = checkpoint.save_checkpoint(tmp_path / "good.pt", BlurNet(TINY))
    data = good.read_bytes()
    res = CliRunner().invoke(train_cli, ["export", str(good), "--out", str(good)])
    assert res.exit_code == 1 and "overwrite its own source" in res.output
    assert good.read_bytes() == data


def test_a_file_named_like_shipped_weights_does_not_shadow_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report").write_bytes(b"someone's file")
    assert resolve_weights("report") == WEIGHTS_DIR / "blurnet-cuhk.pt"
    assert resolve_weights("./report").resolve() == (tmp_path / "report").resolve()
