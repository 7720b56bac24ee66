"""Kernel invariants: normalised, odd, centred, and the requested length/angle/sigma."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from blursynth.kernels import convolve, disk_kernel, gaussian_kernel, motion_kernel


def moments(k: np.ndarray):
    """Centroid (x, y-up) and covariance of a kernel's taps around the middle tap."""
    ry, rx = k.shape[0] // 2, k.shape[1] // 2
    yy, xx = np.mgrid[-ry : ry + 1, -rx : rx + 1].astype(float)
    y = -yy  # y up, so angles are counter-clockwise as in the docstring
    mx, my = (k * xx).sum(), (k * y).sum()
    cov = np.array([[(k * xx * xx).sum(), (k * xx * y).sum()],
                    [(k * xx * y).sum(), (k * y * y).sum()]])  # fmt: skip
    return (mx, my), cov


def impulse_centroid(k: np.ndarray, size: int = 41):
    img = np.zeros((size, size), np.float32)
    img[size // 2, size // 2] = 1
    out = convolve(img, k).astype(np.float64)
    yy, xx = np.mgrid[:size, :size]
    return (out * yy).sum() / out.sum(), (out * xx).sum() / out.sum()


KERNELS = [motion_kernel(L, a) for L in (1, 3, 5, 7.5, 15) for a in (0, 17, 45, 90, 163)]
KERNELS += [gaussian_kernel(s) for s in (0, 0.5, 1, 2)] + [disk_kernel(r) for r in (0, 1, 2.5, 4)]


@pytest.mark.parametrize("k", KERNELS)
def test_normalised_odd_centred(k):
    assert k.ndim == 2 and k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert (k >= 0).all()
    cy, cx = impulse_centroid(k)
    assert cy == pytest.approx(20, abs=1e-4) and cx == pytest.approx(20, abs=1e-4)


@pytest.mark.parametrize("length", [5, 7.5, 10, 15])
@pytest.mark.parametrize("angle", [0, 30, 45, 90, 137, 179])
def test_motion_length_and_angle(length, angle):
    _, cov = moments(motion_kernel(length, angle))
    w, v = np.linalg.eigh(cov)
    axis = np.degrees(np.arctan2(v[1, 1], v[0, 1])) % 180
    assert min(abs(axis - angle), 180 - abs(axis - angle)) < 1.5
    # an anti-aliased segment of length L has variance (L^2 - 1)/12 + O(1/12) along its axis
    assert np.sqrt(12 * w[1] + 1) == pytest.approx(length, abs=0.3)
    assert w[0] < 0.25  # thin across the motion


def test_motion_identity_and_horizontal_shape():
    assert np.array_equal(motion_kernel(1, 33), np.ones((1, 1)))
    assert motion_kernel(5, 0).shape == (1, 5)
    assert np.allclose(motion_kernel(9, 30), motion_kernel(9, 210))


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.0])
def test_gaussian_variance(sigma):
    _, cov = moments(gaussian_kernel(sigma))
    assert cov[0, 0] == pytest.approx(sigma**2, rel=1e-3)
    assert cov[1, 1] == pytest.approx(sigma**2, rel=1e-3)
    assert cov[0, 1] == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("radius", [2.0, 4.0, 6.0])
def test_disk_second_moment(radius):
    _, cov = moments(disk_kernel(radius))
    # uniform disk: variance r^2 / 4 per axis (pixel area adds 1/12)
    assert cov[0, 0] == pytest.approx(radius**2 / 4 + 1 / 12, rel=0.05)
    assert cov[0, 0] == pytest.approx(cov[1, 1], rel=1e-9)


@pytest.mark.parametrize(
    "call",
    [lambda: motion_kernel(0.5, 0), lambda: motion_kernel(np.nan, 0),
     lambda: motion_kernel(5, np.inf), lambda: gaussian_kernel(-1), lambda: disk_kernel(-0.1),
     lambda: convolve(np.zeros((5, 5), np.float32), np.ones((2, 3)))],
)  # fmt: skip
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def _asymmetric(shape):
    k = np.random.default_rng(0).random(shape)
    return k / k.sum()  # asymmetric on purpose: catches a missing flip


@pytest.mark.parametrize(
    "k",
    [_asymmetric((5, 7)), gaussian_kernel(1.3), motion_kernel(7, 0), motion_kernel(7, 90),
     motion_kernel(9.5, 30), motion_kernel(15, 137), np.outer([1, 2, 0.5], [3, 1, 1, 0, 2]) / 30,
     disk_kernel(3)],
    ids=["dense", "gaussian", "row", "column", "sparse30", "sparse137", "separable", "disk"],
)  # fmt: skip
@pytest.mark.parametrize("shape", [(23, 31, 3), (23, 31), (12, 10, 3)])
def test_convolve_matches_scipy_mirror(k, shape):
    """True convolution with BORDER_REFLECT_101 == scipy.ndimage.convolve(mode='mirror'),
    whichever way (separable, sparse taps, dense) it is computed."""
    img = np.random.default_rng(1).random(shape).astype(np.float32)
    planes = img[..., None] if img.ndim == 2 else img
    expected = np.stack(
        [ndimage.convolve(planes[..., c].astype(np.float64), k, mode="mirror")
         for c in range(planes.shape[-1])], axis=-1,
    ).reshape(shape)  # fmt: skip
    got = convolve(img, k)
    assert got.dtype == np.float32 and got.shape == img.shape
    assert np.abs(got - expected).max() < 1e-5


def _moments(k):
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    return (k * (xx - k.shape[1] // 2)).sum(), (k * (yy - k.shape[0] // 2)).sum()


@pytest.mark.parametrize("seed", range(6))
def test_shake_kernels_are_normalised_odd_and_exactly_centred(seed):
    from blursynth.kernels import trajectory_kernel
    from blursynth.sampling import shake_trajectory

    rng = np.random.default_rng(seed)
    length = float(rng.uniform(5, 15))
    path = np.array(shake_trajectory(rng, length))
    assert np.hypot(*np.diff(path, axis=0).T).sum() == pytest.approx(length, abs=1e-4)
    k = trajectory_kernel(path)
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1 and (k >= 0).all()
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    mx, my = _moments(k)
    assert abs(mx) < 1e-9 and abs(my) < 1e-9  # blurring never shifts the image
    # the kernel spans no more than the path: a pixel of splat on each side at most
    assert max(k.shape) <= 2 * int(np.ceil(length / 2)) + 3


def test_a_straight_trajectory_is_a_motion_line():
    from blursynth.kernels import trajectory_kernel

    k = trajectory_kernel([(0, 0), (4, 0), (9, 0)])  # 9 px along x, two segments
    assert k.shape[0] == 1 and k.shape[1] in (9, 11)
    line = motion_kernel(9, 0)
    assert k.sum() == pytest.approx(1.0) and _moments(k)[0] == pytest.approx(0, abs=1e-12)
    # same spread as the report's line kernel of that length (second moment within 10 %)
    xs = np.arange(k.shape[1]) - k.shape[1] // 2
    xl = np.arange(line.shape[1]) - line.shape[1] // 2
    assert (k[0] * xs**2).sum() == pytest.approx((line[0] * xl**2).sum(), rel=0.1)


def test_a_trajectory_needs_two_finite_points():
    from blursynth.kernels import trajectory_kernel

    with pytest.raises(ValueError, match="n >= 2 finite"):
        trajectory_kernel([(0, 0)])
    with pytest.raises(ValueError, match="n >= 2 finite"):
        trajectory_kernel([(0, 0), (np.nan, 1)])
    assert trajectory_kernel([(2, 2), (2, 2)]).shape == (1, 1)  # no motion: the identity
