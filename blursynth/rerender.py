"""A sample record to its arrays: load the crops it names, build its kernels, render, add
the camera's effects. Depends only on the record and the sources, so ``generate`` and anyone
holding ``records.jsonl`` get the same bytes (:func:`rerender`)."""

from __future__ import annotations

import numpy as np

from blursynth.blurmodels import Scene
from blursynth.camera import jpeg_roundtrip, linear_to_srgb, sensor_noise, srgb_to_linear
from blursynth.errors import BlursynthError
from blursynth.imageio import read_image, to_u8
from blursynth.kernels import convolve
from blursynth.render import fill_behind
from blursynth.sampling import SampleRecord
from blursynth.sources.voc import object_mask


def rerender(record: SampleRecord, voc) -> dict[str, np.ndarray]:
    """Render one record; the same record always gives the same arrays.

    Returns
    -------
    dict
        ``image`` uint8 (H, W, 3); ``gt`` uint8 (H, W) binary, 255 = blurred; ``soft`` uint8
        (H, W), the soft blur map; and the model's own outputs (a ``mixed`` record's
        ``classes`` uint8 (H, W): 0 sharp, 1 motion, 2 defocus).
    """
    model = record.blur_model
    bg = _crop(read_image(voc.image_path(record.bg)), record.bg_box, voc.image_path(record.bg))
    light = srgb_to_linear if record.linear_light else (lambda x: x)  # blur light, not codes
    extra = {}
    if record.uniform is not None:  # no object: the background, sharp or blurred everywhere
        image, soft_blur, binary = _uniform(record, light(bg))
    else:
        fg, mask = _object(voc, record.fg, record.fg_box, record.cls)
        if record.background == "own":  # bg is fg's own crop: take the object out of it
            bg = fill_behind(bg, mask)
        others = ()
        if model.objects == 2:
            f2, m2 = _object(voc, record.fg2, record.fg2_box, record.cls2)
            others = ((light(f2), m2),)
        out = model.render(Scene(light(fg), light(bg), mask, others), record_kernels(record))
        image, soft_blur, binary, extra = out.image, out.soft, out.binary, dict(out.extra)
    if record.noise_seed is not None:  # sensor noise lives in linear light
        linear = image if record.linear_light else srgb_to_linear(image)
        rng = np.random.default_rng(record.noise_seed)
        image = linear_to_srgb(sensor_noise(linear, record.noise_a, record.noise_b, rng))
    elif record.linear_light:
        image = linear_to_srgb(image)
    pixels = to_u8(image)
    if record.jpeg is not None:
        pixels = jpeg_roundtrip(pixels, record.jpeg)
    return {
        "image": pixels,
        "gt": binary.astype(np.uint8) * np.uint8(255),
        "soft": to_u8(soft_blur),
        **extra,
    }


def _object(voc, image_id: str, box, cls: int) -> tuple[np.ndarray, np.ndarray]:
    """A foreground crop and its object mask ``m`` (float32, 1 on class ``cls``)."""
    image, labels = voc.load(image_id)
    crop = _crop(image, box, voc.image_path(image_id))
    return crop, object_mask(_crop(labels, box, voc.mask_path(image_id)), cls)


def _uniform(record: SampleRecord, bg: np.ndarray):
    """An image with no object: ``(image, soft blur map, binary blur map)``. Sharp: the
    background as it is; blurred: all of it blurred by the model's uniform kernel (motion k,
    or the background's k1)."""
    shape = bg.shape[:2]
    if record.uniform == "sharp":
        return bg.copy(), np.zeros(shape, np.float32), np.zeros(shape, bool)
    image = convolve(bg, record.blur_model.uniform_kernel(record.blur))
    return np.clip(image, 0.0, 1.0), np.ones(shape, np.float32), np.ones(shape, bool)


def record_kernels(record: SampleRecord) -> tuple[np.ndarray, ...]:
    """The kernels a record names, from its model: motion ``(k,)`` (a line, or its shake
    trajectory); defocus ``(k1, k2)`` (k1 a Gaussian, or a disk of the record's radius); pan
    ``(k, k2)`` (the motion kernel streaks the background); mixed ``(k, k1, k2)``."""
    return record.blur_model.kernels(record.blur)


def _crop(array, box, path):
    y0, x0, y1, x1 = box
    if y1 > array.shape[0] or x1 > array.shape[1]:
        raise BlursynthError(
            f"crop {tuple(box)} does not fit the {array.shape[1]}x{array.shape[0]} image "
            "(records from a different VOC tree?)",
            path,
        )
    return array[y0:y1, x0:x1]
