"""The camera after the blur: linear light, sensor noise, JPEG (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from blursynth.camera import jpeg_roundtrip, linear_to_srgb, sensor_noise, srgb_to_linear


def test_srgb_and_linear_are_inverse_and_match_the_standard():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(x)) - x).max() < 2e-6
    # IEC 61966-2-1 reference points: code 0.5 is 21.4 % of the light; 0.04045 the knee
    assert float(srgb_to_linear(np.float32(0.5))) == pytest.approx(0.21404, abs=1e-5)
    assert float(srgb_to_linear(np.float32(0.04045))) == pytest.approx(0.04045 / 12.92)
    assert srgb_to_linear(x).dtype == np.float32 and (np.diff(srgb_to_linear(x)) >= 0).all()


def test_blurring_in_linear_light_keeps_highlights_bright():
    """A one-pixel highlight spread over 4 pixels: in sRGB values it dims to a quarter of
    the code value; in light, to a quarter of the light, which encodes much brighter."""
    from blursynth.kernels import convolve, disk_kernel

    image = np.zeros((9, 9, 3), np.float32)
    image[4, 4] = 1.0
    k = disk_kernel(1.0)
    in_srgb = convolve(image, k)[4, 4, 0]
    in_light = linear_to_srgb(convolve(srgb_to_linear(image), k))[4, 4, 0]
    assert in_light > in_srgb * 1.5


def test_poisson_gaussian_noise_has_the_model_variance():
    rng = np.random.default_rng(0)
    a, b = 0.01, 1e-4
    for level in (0.1, 0.5):
        flat = np.full((400, 400, 3), level, np.float32)
        z = sensor_noise(flat, a, b, rng)
        assert z.mean() == pytest.approx(level, abs=2e-3)
        assert z.var() == pytest.approx(a * level + b, rel=0.05)
    same = sensor_noise(flat, a, b, np.random.default_rng(7))
    assert np.array_equal(same, sensor_noise(flat, a, b, np.random.default_rng(7)))
    with pytest.raises(ValueError, match="noise parameters must be >= 0"):
        sensor_noise(flat, -1, b, rng)


def test_jpeg_roundtrip_is_deterministic_and_lossy_with_quality():
    rng = np.random.default_rng(1)
    smooth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, 0)
    image = np.clip(smooth + rng.integers(0, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
    low, high = jpeg_roundtrip(image, 20), jpeg_roundtrip(image, 95)
    assert low.shape == image.shape and low.dtype == np.uint8
    assert np.array_equal(low, jpeg_roundtrip(image, 20))
    err = [np.abs(x.astype(int) - image).mean() for x in (low, high)]
    assert err[0] > err[1] > 0
    with pytest.raises(ValueError, match="1..100"):
        jpeg_roundtrip(image, 0)
