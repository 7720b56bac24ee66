"""blursynth: sharp/blurred training data for blur segmentation.

Dtype policy (stated once, followed everywhere)
-----------------------------------------------
* Images inside the library are ``float32`` arrays of shape ``(H, W, 3)``, RGB, in ``[0, 1]``.
* Masks and blur maps are ``float32`` arrays of shape ``(H, W)`` in ``[0, 1]``.
  A *blur map* is 1 where the pixel is blurred and 0 where it is sharp (the CUHK convention);
  an *object mask* (from VOC) is 1 on the object.
* On disk, images and masks are 8-bit: ``uint8`` PNG (or the source's JPEG); ground truth
  follows CUHK: **255 = blurred, 0 = sharp**.

This package never imports torch; the trainer lives in :mod:`blursynth_train`.
"""

__version__ = "0.1.0"

from blursynth.errors import BlursynthError  # noqa: E402

__all__ = ["BlursynthError", "__version__"]
