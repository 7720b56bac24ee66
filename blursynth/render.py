"""The report's two image-formation models, both in one image, a panning shot, and the
filling-in of an object's own background: numpy and OpenCV, no I/O, no randomness.

All inputs follow the package dtype policy: images float32 ``(H, W, 3)`` in [0, 1], the
object mask ``m`` float32 ``(H, W)`` in [0, 1] (1 on the object), kernels from
:mod:`blursynth.kernels`. F, B and m must have the same height and width.
"""

from __future__ import annotations

import cv2
import numpy as np

from blursynth.kernels import convolve

#: A soft blur map is binarised as ``soft >= BINARY_THRESHOLD`` (blurred).
BINARY_THRESHOLD = 0.5
#: :func:`fill_behind`: the hole is the object grown by this many pixels (its anti-aliased
#: edge and a fringe of its colour), filled by Telea's method from this many pixels around.
FILL_MARGIN = 3
FILL_RADIUS = 5


def fill_behind(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photograph with its object removed: what lies behind, filled in from around it.

    The hole (every pixel where ``mask > 0``, grown by :data:`FILL_MARGIN` px) is inpainted
    with Telea's fast-marching method (OpenCV, radius :data:`FILL_RADIUS`); every pixel
    outside the hole is returned unchanged. Used for an object over its own background
    (``--background own``): a moving object must not smear over a sharp copy of itself, and
    a defocused background must not bleed the object's colours. The filling is smooth; it
    matters where the object uncovers it (a band of at most half the motion length along a
    moving object's edge) and under the background blur.

    Parameters
    ----------
    image : float32 (H, W, 3) in [0, 1]
    mask : float32 (H, W), > 0 on the object

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3); deterministic (the same inputs give the same array).
    """
    if image.ndim != 3 or image.shape[:2] != mask.shape:
        raise ValueError(f"image (H, W, 3) and mask (H, W) must match: {image.shape}, {mask.shape}")
    size = 2 * FILL_MARGIN + 1
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    hole = cv2.dilate((mask > 0).astype(np.uint8), grow)
    out = np.array(image, dtype=np.float32, copy=True)
    if not hole.any():
        return out
    if hole.all():  # nothing around to fill from: the object is the whole photograph
        return out
    codes = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)  # OpenCV inpaints 8 bits
    filled = cv2.inpaint(codes, hole, FILL_RADIUS, cv2.INPAINT_TELEA)
    inside = hole.astype(bool)
    out[inside] = filled[inside].astype(np.float32) / np.float32(255)
    return out


def render_motion(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, k: np.ndarray):
    """Equation (1): a moving object over a sharp background.

    ``I = k*(m⊙F) + (1 − k*m)⊙B``.

    Returns
    -------
    image : float32 (H, W, 3) in [0, 1]
    blurred_mask : float32 (H, W)
        ``k*m``, the ground truth (1 = blurred object).
    """
    _check(fg, bg, mask)
    km = convolve(mask, k)
    image = convolve(fg * mask[..., None], k) + (1.0 - km)[..., None] * bg
    return np.clip(image, 0.0, 1.0, out=image), np.clip(km, 0.0, 1.0)


def render_defocus(
    fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, k1: np.ndarray, k2: np.ndarray
):
    """Equation (2): a sharp object over a defocused background.

    ``I = (k2*m)⊙F + (1 − k2*m)⊙(k1*B)``.

    Returns
    -------
    image : float32 (H, W, 3) in [0, 1]
    soft_mask : float32 (H, W)
        ``k2*m``, the softened object (sharp) weight; the ground truth is ``m`` itself.
    """
    _check(fg, bg, mask)
    m2 = convolve(mask, k2)
    image = m2[..., None] * fg + (1.0 - m2)[..., None] * convolve(bg, k1)
    return np.clip(image, 0.0, 1.0, out=image), np.clip(m2, 0.0, 1.0)


def render_pan(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, k: np.ndarray, k2: np.ndarray):
    """A panning shot: the camera follows a moving object, which stays sharp, while the
    background streaks along the camera's path.

    ``I = (k2*m)⊙F + (1 − k2*m)⊙(k*B)``: equation (2) with the motion kernel ``k`` in place of
    the defocus kernel k1. The object mask m is the (sharp) truth, as in eq. (2); the blurred
    pixels are all motion blur.

    Returns
    -------
    image : float32 (H, W, 3) in [0, 1]
    soft_mask : float32 (H, W)
        ``k2*m``, the softened object (sharp) weight.
    """
    return render_defocus(fg, bg, mask, k, k2)


def render_mixed(
    f1: np.ndarray,
    f2: np.ndarray,
    bg: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    k: np.ndarray,
    k1: np.ndarray,
    k2: np.ndarray,
):
    """Both models in one image: a sharp object over a defocused background (eq. 2), and a
    moving object in front of both (eq. 1 with that image as its background).

    ``base = (k2*m1)⊙F1 + (1 − k2*m1)⊙(k1*B)``, ``I = k*(m2⊙F2) + (1 − k*m2)⊙base``.

    Returns
    -------
    image : float32 (H, W, 3) in [0, 1]
    classes : uint8 (H, W)
        0 sharp (``m1 >= 0.5`` where ``k*m2 < 0.5``), 1 motion (``k*m2 >= 0.5``), 2 defocus.
    soft_blur : float32 (H, W)
        ``1 − (1 − k*m2)⊙(k2*m1)``: how much of each pixel is blurred light.
    """
    _check(f1, bg, m1)
    _check(f2, bg, m2)
    base, sharp = render_defocus(f1, bg, m1, k1, k2)
    image, moving = render_motion(f2, base, m2, k)
    classes = np.full(m1.shape, 2, np.uint8)
    classes[m1 >= BINARY_THRESHOLD] = 0
    classes[moving >= BINARY_THRESHOLD] = 1
    return image, classes, (1.0 - (1.0 - moving) * sharp).astype(np.float32)


def _check(fg, bg, mask):
    if fg.shape != bg.shape or fg.shape[:2] != mask.shape or fg.ndim != 3:
        raise ValueError(
            f"F, B and m must share height and width, got {fg.shape}, {bg.shape}, {mask.shape}"
        )
