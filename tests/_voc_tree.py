"""Build small PASCAL VOC trees on disk for tests: real JPEGs and palette PNG masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from blursynth.sources.voc import voc_palette


def write_palette_png(path: Path, labels: np.ndarray) -> None:
    im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.astype(np.uint8).tobytes())
    im.putpalette(voc_palette())
    im.save(path)


def object_labels(h: int, w: int, cls: int, box: tuple[int, int, int, int], void: int = 2):
    """Background with one rectangle of ``cls`` and a void band of ``void`` px on each side
    of its border (as VOC draws it)."""
    labels = np.zeros((h, w), np.uint8)
    y0, x0, y1, x1 = box
    labels[max(0, y0 - void) : y1 + void, max(0, x0 - void) : x1 + void] = 255
    labels[y0 + void : y1 - void, x0 + void : x1 - void] = cls
    return labels


def textured_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random texture with plenty of high frequencies, uint8 RGB."""
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((4, 4, 1), np.uint8))[:h, :w]
    noise = rng.integers(-40, 41, (h, w, 3))
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def make_voc(
    root: Path,
    sizes=((48, 64), (64, 48), (56, 56), (60, 72)),
    seed: int = 0,
    splits=("train", "val", "trainval"),
) -> Path:
    """A VOCdevkit under ``root`` (root/VOCdevkit/VOC2012); returns the VOC2012 folder.

    Image ``img{i}`` has class ``i + 1`` on a rectangle covering about a quarter of it.
    """
    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for i, (h, w) in enumerate(sizes):
        image_id = f"img{i}"
        ids.append(image_id)
        Image.fromarray(textured_image(rng, h, w)).save(
            voc / "JPEGImages" / f"{image_id}.jpg", quality=95
        )
        box = (h // 4, w // 4, 3 * h // 4, 3 * w // 4)
        write_palette_png(
            voc / "SegmentationClass" / f"{image_id}.png", object_labels(h, w, i % 20 + 1, box)
        )
    for split in splits:
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return voc
