"""Post-processing of blur probability maps (pure numpy/OpenCV, no torch).

The CNN classifies each pixel from its 31x31 window, so its map is blocky near region edges.
An edge-aware filter guided by the image moves the map's edges onto the image's edges.

Settings (:data:`POSTPROCESS`):

``none``
    the map as it is.
``guided``
    guided filter, radius :data:`GUIDED_RADIUS`, eps :data:`GUIDED_EPS`.
``guided-otsu``
    ``guided``, then the map is stretched (1st-99th percentile) and rescaled piecewise-
    linearly so that its own Otsu threshold
    lands on 0.5 (as the hand-crafted baselines are): the mask always splits the image in
    two, which suits photographs with partial blur (CUHK) and is wrong for ones that are
    sharp or blurred all over. Opt-in.

The radius and eps were chosen on the whole images behind the validation patches of the
CUHK dataset (``experiments/tune_postprocess.py``; ``docs/results.md``), never on held-out images.
"""

from __future__ import annotations

import cv2
import numpy as np

POSTPROCESS = ("none", "guided", "guided-otsu")

#: Defaults of :func:`guided_filter`, chosen on validation images (see the module docstring).
GUIDED_RADIUS = 16
GUIDED_EPS = 1e-2


def guided_filter(
    guide: np.ndarray, src: np.ndarray, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS
) -> np.ndarray:
    """Grey-guide guided filter (He, Sun & Tang, ECCV 2010) of a map.

    Parameters
    ----------
    guide : float32 (H, W, 3) or (H, W) in [0, 1]
        The image; colour is reduced to grey.
    src : float32 (H, W) in [0, 1]
        The map to filter (blur probability).
    radius : int
        Half-side of the box window, >= 1.
    eps : float
        Regularisation, > 0: larger smooths more across weak image edges.

    Returns
    -------
    numpy.ndarray
        float32 (H, W) in [0, 1].
    """
    if radius < 1:
        raise ValueError(f"guided filter radius must be >= 1, got {radius}")
    if eps <= 0:
        raise ValueError(f"guided filter eps must be > 0, got {eps}")
    guide = np.asarray(guide, dtype=np.float32)
    if guide.ndim == 3:
        guide = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY)
    src = np.asarray(src, dtype=np.float32)
    if guide.shape != src.shape:
        raise ValueError(f"guide and map must have the same size, got {guide.shape}, {src.shape}")
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x):
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT_101)

    mean_i, mean_p = mean(guide), mean(src)
    cov_ip = mean(guide * src) - mean_i * mean_p
    var_i = mean(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return np.clip(mean(a) * guide + mean(b), 0.0, 1.0)


def postprocess(name: str, image: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Apply post-processing ``name`` (one of :data:`POSTPROCESS`) to a probability map."""
    if name == "none":
        return prob
    if name == "guided":
        return guided_filter(image, prob)
    if name == "guided-otsu":
        from blursynth.baselines import otsu_normalise

        return otsu_normalise(guided_filter(image, prob))
    raise ValueError(f"post-processing must be one of {POSTPROCESS}, got {name!r}")
