"""benchmarks/bench_train.py times a training step of every registered family (the GPU plan,
experiments/gpu_runs.sh, sizes its runs from it), so a new family cannot leave it behind."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from blursynth_train.models import model_kinds

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("arch", model_kinds())
def test_the_model_step_of_every_family_is_timed(arch):
    import torch

    rate = _bench().model_step(torch.device("cpu"), 2, 1, arch=arch, crop=64, freeze_blocks=None)
    assert rate > 0


def test_the_liteunet_step_with_its_whole_encoder_trained_writes_its_rate(tmp_path):
    out = tmp_path / "r.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--arch", "liteunet", "--crop", "64", "--batch-size", "2",
         "--steps", "1", "--threads", "1", "--no-data", "--freeze-blocks", "0",
         "--json", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["arch"] == "liteunet" and result["batch_size"] == 2
    assert list(result["samples_per_s"]) == ["model step, CPU 1 thread(s)"]
