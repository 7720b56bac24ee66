"""Pure kernel builders and the one convolution they are applied with.

Every builder returns a ``float64`` 2-D kernel that is odd-sized, centred (its centroid is the
middle tap, so blurring never shifts the image) and normalised to sum 1. Blurring is always
"build a kernel, then :func:`convolve`" (after kornia's ``get_motion_kernel2d`` + ``filter2d``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: The single border mode used for images *and* masks (mirror without repeating the edge).
BORDER = cv2.BORDER_REFLECT_101


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Anti-aliased linear motion kernel.

    The kernel is the box-filtered image of a line segment of ``length`` pixels through the
    centre at ``angle`` degrees (counter-clockwise from the +x axis, image y pointing down):
    a tap at offset ``(dx, dy)`` gets weight ``max(0, 1 - |d_perp|) * clip(L/2 + 1/2 - |t|, 0, 1)``
    where ``t`` and ``d_perp`` are its coordinates along and across the segment. As with
    MATLAB's ``fspecial('motion')``, partial pixels get fractional weights (no rounded
    Bresenham points), so non-integer lengths and any angle are represented with sub-pixel
    accuracy. The kernel is point-symmetric, hence exactly centred.

    Parameters
    ----------
    length : float
        Length of the motion in pixels, ``>= 1``. ``length == 1`` gives the identity.
    angle : float
        Direction in degrees; only ``angle mod 180`` matters.

    Returns
    -------
    numpy.ndarray
        float64 ``(k, k)`` with ``k`` odd, cropped to the smallest centred box that holds every
        non-zero tap, summing to 1.

    Examples
    --------
    >>> k = motion_kernel(5, 0)
    >>> k.shape, float(k.sum())
    ((1, 5), 1.0)
    """
    if not np.isfinite(length) or length < 1:
        raise ValueError(f"motion kernel length must be a finite number >= 1, got {length}")
    if not np.isfinite(angle):
        raise ValueError(f"motion kernel angle must be finite, got {angle}")
    if length == 1:  # a one-pixel "motion" is no motion at any angle (as documented)
        return np.ones((1, 1))
    half = length / 2.0
    radius = int(math.ceil(half + 1))
    theta = math.radians(angle % 180.0)
    c, s = math.cos(theta), math.sin(theta)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    dx, dy = np.meshgrid(offsets, offsets)  # dx: columns, dy: rows (down)
    # image y points down, so a counter-clockwise angle moves "up": direction (c, -s)
    along = dx * c - dy * s
    across = dx * s + dy * c
    weights = np.clip(1.0 - np.abs(across), 0.0, None) * np.clip(half + 0.5 - np.abs(along), 0, 1)
    weights[np.abs(weights) < 1e-12] = 0.0
    return _normalise(_crop_centred(weights))


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Isotropic Gaussian kernel of standard deviation ``sigma`` pixels.

    The radius is ``ceil(truncate * sigma)`` as in :func:`scipy.ndimage.gaussian_filter`;
    ``sigma == 0`` gives the identity.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"gaussian sigma must be a finite number >= 0, got {sigma}")
    if truncate <= 0:
        raise ValueError(f"gaussian truncate must be > 0, got {truncate}")
    if sigma == 0:
        return np.ones((1, 1))
    radius = int(math.ceil(truncate * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return _normalise(np.outer(g, g))


def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased uniform disk (pillbox) of ``radius`` pixels, for out-of-focus blur."""
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"disk radius must be a finite number >= 0, got {radius}")
    r = int(math.ceil(radius + 0.5))
    # 8x8 supersampling of each pixel's area inside the circle
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    offsets = np.arange(-r, r + 1, dtype=np.float64)
    yy = offsets[:, None, None, None] + sub[None, None, :, None]
    xx = offsets[None, :, None, None] + sub[None, None, None, :]
    inside = (xx**2 + yy**2) <= max(radius, 0.5) ** 2
    return _normalise(_crop_centred(inside.mean(axis=(2, 3))))


def trajectory_kernel(points, samples_per_px: int = 8) -> np.ndarray:
    """Camera-shake kernel: the time the image spends at each offset along a 2-D path.

    The polyline through ``points`` is walked at constant speed (``samples_per_px`` samples a
    pixel of path) and every sample is splatted bilinearly onto the taps; the path is first
    shifted so that its time-average is at the origin, and bilinear splats keep that first
    moment, so the kernel is **exactly centred** (its centroid is the middle tap). In the
    spirit of Boracchi & Foi (2012): the trajectory itself is drawn by
    :func:`blursynth.sampling.shake_trajectory`.

    Parameters
    ----------
    points : array-like (n, 2)
        ``(x, y)`` positions in pixels (y down), ``n >= 2``.

    Returns
    -------
    numpy.ndarray
        float64 ``(k, k)`` with ``k`` odd, summing to 1.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2 or not np.isfinite(pts).all():
        raise ValueError(f"a trajectory needs n >= 2 finite (x, y) points, got shape {pts.shape}")
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = seg.sum()
    if total == 0:
        return np.ones((1, 1))
    # constant-speed samples along the path (midpoints of equal arc-length steps)
    n = max(2, int(math.ceil(total * samples_per_px)))
    t = (np.arange(n) + 0.5) / n * total
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    x = np.interp(t, cum, pts[:, 0])
    y = np.interp(t, cum, pts[:, 1])
    x -= x.mean()
    y -= y.mean()
    r = int(math.ceil(max(np.abs(x).max(), np.abs(y).max()))) + 1
    k = np.zeros((2 * r + 1, 2 * r + 1))
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    cols, rows = x0.astype(int) + r, y0.astype(int) + r
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (rows + dy, cols + dx), wy * wx)
    k[k < 1e-12 * k.max()] = 0.0
    return _normalise(_crop_centred(k))


def convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an image ``(H, W)`` or ``(H, W, C)`` with a 2-D kernel.

    True convolution (the kernel is flipped), :data:`BORDER` at the edges, computed in the
    input's float dtype (float32 for library images). A centred kernel never shifts content.
    """
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd sides, got shape {kernel.shape}")
    if kernel.shape == (1, 1):
        return x * x.dtype.type(kernel[0, 0])
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float64)
    # Same result three ways; pick the fastest (5-8x on VOC-sized images for our kernels).
    u, s, vt = np.linalg.svd(flipped)
    if s[1:].sum() <= 1e-9 * s[0]:  # separable (Gaussians, 1-pixel-wide lines)
        col, row = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
        if col.sum() < 0:
            col, row = -col, -row
        out = cv2.sepFilter2D(
            x, -1, row.astype(np.float32), col.astype(np.float32), borderType=BORDER
        )
    elif 2 * np.count_nonzero(flipped) <= flipped.size:  # sparse (oblique motion lines)
        out = _convolve_taps(x, flipped)
    else:
        out = cv2.filter2D(x, -1, flipped.astype(np.float32), borderType=BORDER)
    return out.reshape(x.shape)


def _convolve_taps(x: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Correlate with ``flipped`` as a sum of shifted copies, one per non-zero tap."""
    ry, rx = flipped.shape[0] // 2, flipped.shape[1] // 2
    padded = cv2.copyMakeBorder(x, ry, ry, rx, rx, BORDER)
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i, j in zip(*np.nonzero(flipped), strict=True):
        cv2.scaleAdd(padded[i : i + h, j : j + w], float(flipped[i, j]), out, dst=out)
    return out


def _crop_centred(k: np.ndarray) -> np.ndarray:
    """Crop to the smallest box, centred on the middle tap, that holds every non-zero tap."""
    rows = np.flatnonzero(k.any(axis=1))
    cols = np.flatnonzero(k.any(axis=0))
    cy, cx = k.shape[0] // 2, k.shape[1] // 2
    ry = max(cy - rows[0], rows[-1] - cy)
    rx = max(cx - cols[0], cols[-1] - cx)
    return k[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]


def _normalise(k: np.ndarray) -> np.ndarray:
    return k / k.sum()
