"""Equations (1) and (2) against a direct float64 transcription, and their limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from blursynth.kernels import gaussian_kernel, motion_kernel
from blursynth.render import blur_maps, render_defocus, render_motion, render_pan

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
    soft, binary = blur_maps("pan", m, m2)
    assert np.array_equal(binary, m == 0) and np.allclose(soft, 1 - m2)
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


def test_mixed_is_eq2_under_eq1_in_float64():
    """render_mixed against a direct float64 transcription of its two equations."""
    from scipy import ndimage

    from blursynth.kernels import gaussian_kernel, motion_kernel
    from blursynth.render import render_mixed

    rng = np.random.default_rng(3)
    h, w = 40, 52
    f1, f2, bg = (rng.random((h, w, 3), dtype=np.float32) for _ in range(3))
    m1 = np.zeros((h, w), np.float32)
    m1[5:30, 4:25] = 1
    m2 = np.zeros((h, w), np.float32)
    m2[12:36, 20:45] = 1
    k, k1, k2 = motion_kernel(7, 30), gaussian_kernel(1.5), gaussian_kernel(1.0)

    def conv(x, kern):  # true convolution, reflect-101 borders, float64
        x = x.astype(np.float64)
        if x.ndim == 3:
            return np.stack([conv(x[..., c], kern) for c in range(3)], axis=-1)
        return ndimage.convolve(x, kern, mode="mirror")

    s = conv(m1, k2)
    base = s[..., None] * f1 + (1 - s)[..., None] * conv(bg, k1)
    km = conv(m2, k)
    want = conv(m2[..., None] * f2, k) + (1 - km)[..., None] * base
    image, classes, soft = render_mixed(f1, f2, bg, m1, m2, k, k1, k2)
    assert np.abs(image - np.clip(want, 0, 1)).max() < 1e-4
    assert np.abs(soft - (1 - (1 - km) * s)).max() < 1e-4
    # classes: moving where k*m2 >= 0.5, else sharp on the object, else defocused
    assert (classes[km >= 0.5] == 1).all()
    assert (classes[(km < 0.5) & (m1 >= 0.5)] == 0).all()
    assert (classes[(km < 0.5) & (m1 < 0.5)] == 2).all()
    assert set(np.unique(classes)) == {0, 1, 2}


def test_fill_behind_removes_the_object_and_keeps_every_other_pixel():
    """A red square on a grey ramp: the hole (the square grown by FILL_MARGIN) is filled with
    the ramp's colours, no red is left, and every pixel outside it is the input's."""
    from blursynth.render import FILL_MARGIN, fill_behind

    h, w = 40, 50
    ramp = np.linspace(0.2, 0.6, w, dtype=np.float32)
    image = np.repeat(np.repeat(ramp[None, :, None], h, 0), 3, 2).copy()
    mask = np.zeros((h, w), np.float32)
    mask[12:26, 15:33] = 1
    image[mask > 0] = (1.0, 0.0, 0.0)
    out = fill_behind(image, mask)
    hole = ndimage.binary_dilation(mask > 0, iterations=FILL_MARGIN + 1)
    assert np.array_equal(out[~hole], image[~hole])
    inside = out[mask > 0]
    assert np.abs(inside[:, 0] - inside[:, 1]).max() < 0.05  # grey again, no red
    assert 0.2 - 0.01 <= inside.min() and inside.max() <= 0.6 + 0.01
    assert np.array_equal(fill_behind(image, mask), out)  # deterministic
    assert np.array_equal(fill_behind(image, np.zeros_like(mask)), image)
    assert np.array_equal(fill_behind(image, np.ones_like(mask)), image)  # nothing to fill from
    with pytest.raises(ValueError, match="must match"):
        fill_behind(image, mask[:-1])
