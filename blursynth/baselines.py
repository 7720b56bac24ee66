"""Hand-crafted blur maps to compare the CNN against (numpy, scipy and OpenCV; no training).

Every baseline turns an image into a raw local feature, flips its sign where needed so that
larger means more blurred, then calls :func:`otsu_normalise`, the one fixed normalisation:

1. stretch the feature linearly so that its 1st and 99th percentiles map to 0 and 1 (clipped),
2. find the per-image Otsu threshold ``t`` of the stretched map (256 bins),
3. map ``[0, t]`` linearly onto ``[0, 0.5]`` and ``[t, 1]`` onto ``[0.5, 1]``.

The result is a blur-ness map in [0, 1] whose 0.5 threshold *is* the per-image Otsu split, so
the evaluation harness thresholds baselines and CNN alike at 0.5 and nothing is tuned on the
evaluation images. Otsu always splits an image in two: a baseline cannot say "all sharp".

Parameters (fixed; chosen from the papers, not tuned):

========== ============================================================================
su         Su, Lu & Tan 2011: ``beta = sum(s[:k]) / sum(s)`` of the singular values ``s``
           of each 15 x 15 grey window, k = 3 (a fifth of the spectrum), evaluated every
           4 px and bilinearly upsampled; blurred windows are close to low rank.
laplacian  Local variance of the 3 x 3 Laplacian in a 15 x 15 box (integral-image box
           filters on L and L^2); feature ``-log(var + 1e-6)``.
lbp        Yi & Eramian 2016: fraction of rotation-invariant uniform LBP(8, 1) codes 6..9
           in a 21 x 21 window, with the comparison ``g_p - g_c > 0.016`` (grey in [0, 1]);
           feature ``-fraction``. Their multi-scale inference and matting are left out.
all-blurred the constant map 1: the trivial answer every score must beat.
========== ============================================================================
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BASELINES = ("su", "laplacian", "lbp", "all-blurred")


def to_grey(image: np.ndarray) -> np.ndarray:
    """float32 ``(H, W)`` grey (ITU-R 601 luma) of a float ``(H, W, 3)`` or ``(H, W)`` image."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def su_feature(grey: np.ndarray, window: int = 15, k: int = 3, step: int = 4) -> np.ndarray:
    """Su et al. singular-value ratio ``sum(s[:k]) / sum(s)`` per pixel (higher = blurrier).

    Computed for the windows centred on every ``step``-th pixel (reflect padding) and
    upsampled bilinearly; a window of zeros counts as fully blurred (1.0).
    """
    from scipy import ndimage  # here, not at the top: it costs every CLI call ~0.4 s

    if window % 2 == 0 or not 0 < k <= window:
        raise ValueError(f"window must be odd and 0 < k <= window, got {window}, {k}")
    H, W = grey.shape
    r = window // 2
    padded = np.pad(grey.astype(np.float32), r, mode="reflect")
    windows = sliding_window_view(padded, (window, window))[::step, ::step]
    beta = np.empty(windows.shape[:2], dtype=np.float32)
    for y0 in range(0, beta.shape[0], 32):  # bounds the copy that svd makes
        s = np.linalg.svd(windows[y0 : y0 + 32], compute_uv=False)
        total = s.sum(-1)
        top = s[..., :k].sum(-1)
        beta[y0 : y0 + 32] = np.divide(top, total, out=np.ones_like(total), where=total > 0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32) / np.float32(step)
    return ndimage.map_coordinates(beta, [yy, xx], order=1, mode="nearest").astype(np.float32)


def laplacian_variance(grey: np.ndarray, window: int = 15) -> np.ndarray:
    """Local variance of the 3 x 3 Laplacian in a ``window`` box (low = blurred)."""
    lap = cv2.Laplacian(
        grey.astype(np.float32), cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101
    )
    box = {"ddepth": -1, "ksize": (window, window), "borderType": cv2.BORDER_REFLECT_101}
    mean = cv2.boxFilter(lap, **box)
    mean_sq = cv2.boxFilter(lap * lap, **box)
    return np.maximum(mean_sq - mean * mean, 0)


def lbp_riu2(grey: np.ndarray, threshold: float = 0.016) -> np.ndarray:
    """Rotation-invariant uniform LBP(8, 1) codes, uint8 ``(H, W)`` in 0..9.

    Bit ``p`` is set when neighbour ``p`` (bilinear on the unit circle, edges replicated)
    exceeds the centre by more than ``threshold``; uniform patterns (at most two bit
    changes round the circle) get their number of set bits, the others 9.
    """
    g = grey.astype(np.float32)
    H, W = g.shape
    pad = np.pad(g, 1, mode="edge")
    a = np.float32(np.sqrt(0.5))
    bits = []
    for p in range(8):
        dy, dx = -np.sin(np.pi * p / 4), np.cos(np.pi * p / 4)
        if p % 2 == 0:
            iy, ix = int(round(dy)), int(round(dx))
            nb = pad[1 + iy : 1 + iy + H, 1 + ix : 1 + ix + W]
        else:  # diagonal: bilinear between the centre, two edge neighbours and the corner
            sy, sx = int(np.sign(dy)), int(np.sign(dx))
            row = pad[1 + sy : 1 + sy + H, 1 : 1 + W]
            col = pad[1 : 1 + H, 1 + sx : 1 + sx + W]
            corner = pad[1 + sy : 1 + sy + H, 1 + sx : 1 + sx + W]
            nb = (1 - a) * ((1 - a) * g + a * col) + a * ((1 - a) * row + a * corner)
        bits.append(nb - g > threshold)
    bits = np.stack(bits)
    changes = np.count_nonzero(bits != np.roll(bits, 1, axis=0), axis=0)
    ones = np.count_nonzero(bits, axis=0)
    return np.where(changes <= 2, ones, 9).astype(np.uint8)


def lbp_sharpness(grey: np.ndarray, window: int = 21, threshold: float = 0.016) -> np.ndarray:
    """Yi & Eramian sharpness: fraction of LBP codes 6..9 in a ``window`` box (high = sharp)."""
    codes = lbp_riu2(grey, threshold)
    hit = (codes >= 6).astype(np.float32)
    return cv2.boxFilter(hit, -1, (window, window), borderType=cv2.BORDER_REPLICATE)


def background_sharpness(image: np.ndarray, background: np.ndarray) -> float:
    """How sharp a photograph's background is: the median :func:`lbp_sharpness` (Yi &
    Eramian 2016, their window and threshold) over the ``background`` pixels, in [0, 1].

    An absolute measure (not normalised per image): the share of a neighbourhood's pixels
    with a sharp-edge LBP pattern. 0 for a photograph with no background pixel.
    """
    if not background.any():
        return 0.0
    return float(np.median(lbp_sharpness(to_grey(image))[background]))


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the bin edge maximising between-class variance."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)[:-1]
    w1 = hist.sum() - w0
    m0 = np.cumsum(hist * centres)[:-1]
    m1 = (hist * centres).sum() - m0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - m1 / w1) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return float(edges[1 + int(np.argmax(between))])


def otsu_normalise(feature: np.ndarray) -> np.ndarray:
    """Blur-ness in [0, 1] from a raw feature (larger = blurrier), Otsu split at 0.5.

    A constant feature carries no information and gives 0.5 everywhere.
    """
    lo, hi = np.percentile(feature, [1, 99])
    if not hi > lo:
        return np.full(feature.shape, 0.5, dtype=np.float32)
    v = np.clip((feature - lo) / (hi - lo), 0, 1)
    t = min(max(otsu_threshold(v), 1e-6), 1 - 1e-6)
    out = np.where(v < t, 0.5 * v / t, 0.5 + 0.5 * (v - t) / (1 - t))
    return out.astype(np.float32)


def blur_map(image: np.ndarray, method: str) -> np.ndarray:
    """Blur-ness map of ``image`` by one baseline.

    Parameters
    ----------
    image : float32 (H, W, 3) or (H, W) in [0, 1]
    method : {"su", "laplacian", "lbp", "all-blurred"}

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` in [0, 1]; ``>= 0.5`` means blurred.
    """
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}")
    grey = to_grey(image)
    if method == "all-blurred":
        return np.ones(grey.shape, dtype=np.float32)
    if method == "su":
        feature = su_feature(grey)
    elif method == "laplacian":
        feature = -np.log(laplacian_variance(grey) + 1e-6)
    else:
        feature = -lbp_sharpness(grey)
    return otsu_normalise(feature)
