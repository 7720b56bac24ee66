"""Equations (1) and (2) against a direct float64 transcription, and their limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from blursynth import blurmodels
from blursynth.blurmodels import Scene
from blursynth.kernels import gaussian_kernel, motion_kernel
from blursynth.render import render_defocus, render_motion, render_pan

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


def test_pan_streaks_the_background_and_keeps_the_object(scene):
    """A panning shot in float64: the motion kernel blurs the background only; far from the
    object's edge the object is F itself, and the truth is the object mask (1 - m blurred)."""
    fg, bg, m = scene
    k, k2 = motion_kernel(11.2, 35), gaussian_kernel(1.0)
    image, m2 = render_pan(fg, bg, m, k, k2)
    m2_64 = conv64(m, k2)
    expected = m2_64[..., None] * fg + (1 - m2_64)[..., None] * conv64(bg, k)
    assert image.dtype == np.float32
    assert np.abs(image - np.clip(expected, 0, 1)).max() < 1e-5
    assert np.abs(image[15:25, 20:35] - fg[15:25, 20:35]).max() < 1e-6  # the object is sharp
    truth = blurmodels.get("pan").render(Scene(fg, bg, m), (k, k2))
    assert np.array_equal(truth.image, image)
    assert np.array_equal(truth.binary, m == 0) and np.allclose(truth.soft, 1 - m2)
    still, _ = render_pan(fg, bg, np.zeros_like(m), DELTA, k2)
    assert np.abs(still - bg).max() < 1e-6  # no motion, no object: the background as it is


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


def test_each_model_says_its_truth(scene):
    """Motion: ``k*m >= 0.5`` is blurred; defocus: the object mask itself is sharp."""
    fg, bg, m = scene
    k = motion_kernel(9, 0)
    motion = blurmodels.get("motion").render(Scene(fg, bg, m), (k,))
    _, km = render_motion(fg, bg, m, k)
    assert np.array_equal(motion.binary, km >= 0.5) and np.array_equal(motion.soft, km)
    k1, k2 = gaussian_kernel(1.5), gaussian_kernel(1.0)
    defocus = blurmodels.get("defocus").render(Scene(fg, bg, m), (k1, k2))
    _, m2 = render_defocus(fg, bg, m, k1, k2)
    assert np.allclose(defocus.soft, 1 - m2) and np.array_equal(defocus.binary, m == 0)
    with pytest.raises(ValueError, match="blur model must be one of"):
        blurmodels.get("zoom")
