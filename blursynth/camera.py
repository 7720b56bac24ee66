"""What a camera does after the blur: linear light, sensor noise, JPEG. Pure functions.

Images follow the package policy (float32 ``(H, W, 3)`` in [0, 1], sRGB-encoded unless said
otherwise). Randomness comes only through a passed-in ``numpy.random.Generator``; the JPEG
round trip encodes and decodes in memory.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Decode sRGB values in [0, 1] to linear light (IEC 61966-2-1), float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """Encode linear light in [0, 1] to sRGB values (the inverse of :func:`srgb_to_linear`)."""
    y = np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(y, 1 / 2.4) - 0.055).astype(
        np.float32
    )


def sensor_noise(linear: np.ndarray, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian sensor noise on a linear-light image (Foi et al. 2008).

    ``z = x + sqrt(a x + b) n`` with ``n ~ N(0, 1)`` per pixel and channel: a signal-dependent
    (shot) variance ``a x`` and a constant (read) variance ``b``; clipped to [0, 1].
    """
    if not (a >= 0 and b >= 0):
        raise ValueError(f"noise parameters must be >= 0, got a={a}, b={b}")
    x = np.asarray(linear, dtype=np.float32)
    sd = np.sqrt(np.float32(a) * np.clip(x, 0.0, 1.0) + np.float32(b))
    z = x + sd * rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(z, 0.0, 1.0)


def jpeg_roundtrip(image_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode a uint8 RGB image as JPEG at ``quality`` (1..100) and decode it again."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_u8), "RGB").save(
        buf, format="JPEG", quality=int(quality), subsampling=2
    )
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
