"""BlurNet: shapes, parameter count, and the dense form against patch-by-patch classification."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from blursynth_train.models import BlurNet, ModelConfig

SMALL = {"conv1_channels": 8, "conv2_channels": 12, "fc_units": 16}
# Narrow copies of the architecture keep the tests fast; the dense form does not depend on
# the widths. The patch/kernel variants cover both parities of the ceil-mode pooling windows.
CONFIGS = {
    "report-narrow": ModelConfig(**SMALL),
    "patch29": ModelConfig(patch_size=29, **SMALL),
    "even-conv1": ModelConfig(conv1_kernel=6, **SMALL),
}
# patch 29 has an even number of conv2 outputs: the last pool-2 window is a (normal, edge)
# pair, which the dense form reads from the edge variant alone (the report's 31 is unaffected).


@pytest.fixture(scope="module")
def model() -> BlurNet:
    torch.manual_seed(0)
    return BlurNet(CONFIGS["report-narrow"]).eval()


@pytest.fixture(scope="module")
def full_model() -> BlurNet:
    torch.manual_seed(0)
    return BlurNet().eval()


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


def patchwise_probs(model: BlurNet, image: torch.Tensor) -> torch.Tensor:
    """Reference: the patch network on every pixel's reflect-padded 31 x 31 neighbourhood."""
    r = model.config.patch_size // 2
    padded = np.pad(image.numpy(), ((0, 0), (r, r), (r, r)), mode="reflect")
    x = torch.from_numpy(padded)[None].float()
    patches = F.unfold(x, 2 * r + 1)  # (1, 3 * P * P, H * W)
    patches = patches[0].T.reshape(-1, 3, 2 * r + 1, 2 * r + 1)
    with torch.no_grad():
        probs = torch.softmax(model(patches), dim=1)[:, 1]
    return probs.reshape(image.shape[1:])


def test_parameter_count_matches_the_report(full_model):
    assert full_model.count_parameters() == 7_185_538
    assert full_model.fc1.weight.shape == (1024, 6400)


def test_forward_shape(full_model):
    x = torch.randint(0, 256, (5, 3, 31, 31), dtype=torch.uint8)
    assert full_model(x).shape == (5, 2)


def test_full_size_dense_equals_patchwise(full_model):
    image = random_image(10, 8, seed=4)  # smaller than the patch: repeated reflections
    ref = patchwise_probs(full_model, image)
    assert (full_model.dense_probs(image) - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("shape", [(31, 31), (40, 37), (17, 33), (1, 1), (9, 12)])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_dense_shape(model, shape, stride):
    p = model.dense_probs(random_image(*shape), stride=stride)
    assert p.shape == shape and p.dtype == torch.float32
    assert (p >= 0).all() and (p <= 1).all()


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("shape", [(23, 29), (12, 9)])  # the second is smaller than the patch
def test_dense_equals_patchwise(config, shape):
    torch.manual_seed(1)
    model = BlurNet(CONFIGS[config]).eval()
    image = random_image(*shape, seed=1)
    dense = model.dense_probs(image, stride=1)
    ref = patchwise_probs(model, image)
    assert (dense - ref).abs().max().item() <= 1e-4


def test_tiling_does_not_change_the_result(model):
    image = random_image(45, 38, seed=2)
    whole = model.dense_probs(image, tile=256)
    tiled = model.dense_probs(image, tile=16)
    assert (whole - tiled).abs().max().item() <= 1e-5


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("stride", [2, 4])
def test_fast_mode_is_exact_at_its_samples(config, stride):
    torch.manual_seed(2)
    model = BlurNet(CONFIGS[config]).eval()
    image = random_image(37, 42, seed=3)
    exact = model.dense_probs(image, stride=1)
    fast = model.dense_probs(image, stride=stride, tile=24)
    diff = (fast[::stride, ::stride] - exact[::stride, ::stride]).abs().max().item()
    assert diff <= 1e-5


def test_dense_rejects_bad_input(model):
    with pytest.raises(ValueError, match="stride"):
        model.dense_probs(random_image(8, 8), stride=3)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        model.dense_probs(torch.zeros(1, 8, 8))


def test_config_validation():
    with pytest.raises(ValueError, match="odd"):
        ModelConfig(patch_size=30)
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
