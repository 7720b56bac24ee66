"""Equations (1) and (2) against a direct float64 transcription, and their limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from blursynth.kernels import gaussian_kernel, motion_kernel
from blursynth.render import blur_maps, render_defocus, render_motion

DELTA = np.ones((1, 1))


def conv64(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """float64 convolution with mirror borders (== BORDER_REFLECT_101), per channel."""
    x = x.astype(np.float64)
    if x.ndim == 2:
        return ndimage.convolve(x, k, mode="mirror")
    return np.stack([conv64(x[..., c], k) for c in range(x.shape[-1])], axis=-1)


@pytest.fixture
def scene():
    rng = np.random.default_rng(1)
    fg = rng.random((40, 52, 3)).astype(np.float32)
    bg = rng.random((40, 52, 3)).astype(np.float32)
    mask = np.zeros((40, 52), np.float32)
    mask[10:30, 15:40] = 1
    return fg, bg, mask


def test_motion_equation_1(scene):
    fg, bg, m = scene
    k = motion_kernel(9.3, 27)
    image, km = render_motion(fg, bg, m, k)
    km64 = conv64(m, k)
    expected = conv64(fg * m[..., None], k) + (1 - km64)[..., None] * bg
    assert image.dtype == np.float32 and km.dtype == np.float32
    assert np.abs(image - np.clip(expected, 0, 1)).max() < 1e-5
    assert np.abs(km - km64).max() < 1e-5


def test_defocus_equation_2(scene):
    fg, bg, m = scene
    k1, k2 = gaussian_kernel(1.7), gaussian_kernel(1.0)
    image, m2 = render_defocus(fg, bg, m, k1, k2)
    m2_64 = conv64(m, k2)
    expected = m2_64[..., None] * fg + (1 - m2_64)[..., None] * conv64(bg, k1)
    assert image.dtype == np.float32
    assert np.abs(image - np.clip(expected, 0, 1)).max() < 1e-5
    assert np.abs(m2 - m2_64).max() < 1e-5


def test_empty_mask_gives_background(scene):
    fg, bg, m = scene
    image, km = render_motion(fg, bg, np.zeros_like(m), motion_kernel(11, 60))
    assert np.array_equal(image, bg) and not km.any()


@pytest.mark.parametrize("model", ["motion", "defocus"])
def test_delta_kernels_give_plain_composite(scene, model):
    fg, bg, m = scene
    if model == "motion":
        image, _ = render_motion(fg, bg, m, DELTA)
    else:
        image, _ = render_defocus(fg, bg, m, DELTA, DELTA)
    composite = m[..., None] * fg + (1 - m[..., None]) * bg
    assert np.abs(image - composite).max() < 1e-7


def test_blur_maps(scene):
    fg, bg, m = scene
    _, km = render_motion(fg, bg, m, motion_kernel(9, 0))
    soft, binary = blur_maps("motion", m, km)
    assert np.array_equal(binary, km >= 0.5) and soft is km
    _, m2 = render_defocus(fg, bg, m, gaussian_kernel(1.5), gaussian_kernel(1.0))
    soft, binary = blur_maps("defocus", m, m2)
    assert np.allclose(soft, 1 - m2) and np.array_equal(binary, m == 0)
    with pytest.raises(ValueError, match="model"):
        blur_maps("zoom", m, m2)


def test_shape_mismatch_raises(scene):
    fg, bg, m = scene
    with pytest.raises(ValueError, match="share height and width"):
        render_motion(fg, bg[:-1], m, DELTA)
