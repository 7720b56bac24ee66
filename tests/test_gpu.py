"""The GPU paths: run where torch sees a CUDA device, skipped elsewhere (``gpu`` marker).

Each checks what only a GPU run exercises: bf16 autocast and ``torch.compile`` in the
training step, the CUDA RNG state in checkpoints (an exact ``--resume``), the device memory
budget, and batched inference of the shipped dense model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _trees import make_tree
from click.testing import CliRunner

from blursynth.schema import TileParams
from blursynth.tiles import build_tile_dataset
from blursynth_train import checkpoint
from blursynth_train.cli import main as train_cli
from blursynth_train.data import memory_budget
from blursynth_train.models import LiteUNet, LiteUNetConfig
from blursynth_train.predict import Predictor

pytestmark = pytest.mark.gpu


@pytest.fixture
def tiles(tmp_path):
    root = make_tree(tmp_path / "src", motion=4, defocus=4, size=(40, 70))
    build_tile_dataset(
        TileParams(source="shi", root=str(root), tile_size=32, eval_images=2), tmp_path / "ds"
    )
    return tmp_path / "ds"


def _fit(ds, out, *extra):
    return CliRunner().invoke(
        train_cli,
        ["fit", str(ds), "--arch", "liteunet", "--pretrained", "none", "--out", str(out),
         "--device", "cuda", "--batch-size", "2", "--crop", "32", "--eval-every", "2",
         "--workers", "0", "--deterministic", "-q", *extra],
    )  # fmt: skip


@pytest.mark.parametrize("extra", [(), ("--bf16",), ("--compile",)])
def test_a_cuda_run_trains_with_each_option(tiles, tmp_path, extra):
    res = _fit(tiles, tmp_path / "r", "--iterations", "2", *extra)
    assert res.exit_code == 0, res.output
    assert "cuda" in (tmp_path / "r" / "config.json").read_text()


def test_a_cuda_resume_is_exact(tiles, tmp_path):
    """The CUDA RNG state rides in the checkpoint: 2 + 2 iterations equal 4 at once."""
    assert _fit(tiles, tmp_path / "whole", "--iterations", "4").exit_code == 0
    assert _fit(tiles, tmp_path / "cut", "--iterations", "2").exit_code == 0
    res = _fit(tiles, tmp_path / "cut", "--iterations", "4", "--resume")
    assert res.exit_code == 0, res.output
    a = checkpoint.load_checkpoint(tmp_path / "whole" / "last.pt")["model_state"]
    b = checkpoint.load_checkpoint(tmp_path / "cut" / "last.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_memory_budget_is_half_the_free_gpu_memory():
    free, _ = torch.cuda.mem_get_info()
    assert memory_budget(torch.device("cuda")) == free // 2


def test_batched_cuda_inference_matches_the_cpu():
    torch.manual_seed(0)
    model = LiteUNet(LiteUNetConfig(pretrained="none")).eval()
    images = [np.random.default_rng(k).integers(0, 256, (96, 128, 3), np.uint8) for k in range(4)]
    cpu = Predictor(model)(images)
    gpu = Predictor(model.cuda())(images)
    for a, b in zip(cpu, gpu, strict=True):
        assert np.abs(a.prob - b.prob).max() < 1e-3
