"""Shared fixtures. Real data comes from ``$BLURSYNTH_SHARED_DATA`` and is skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data(sub: str = "") -> Path:
    """The folder ``$BLURSYNTH_SHARED_DATA/sub``, or skip the test when it is not there."""
    root = os.environ.get("BLURSYNTH_SHARED_DATA")
    if not root:
        pytest.skip("BLURSYNTH_SHARED_DATA is not set (real data not available)")
    path = Path(root) / sub
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture
def voc_sample() -> Path:
    return shared_data("voc-sample")


@pytest.fixture
def cuhk_mini() -> Path:
    return shared_data("cuhk-mini")


@pytest.fixture
def dut_sample() -> Path:
    return shared_data("dut-sample")


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests skip where torch sees no CUDA device (CI, and most machines)."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
