"""PASCAL VOC 2012 segmentation: the foreground and background images of ``generate``.

Layout (the real VOCdevkit)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png   palette PNG: 0 background, 1..20, 255 void
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    VOCdevkit/VOC2012/SegmentationObject/           optional, not used

Void policy
-----------
VOC draws a void band (255) about 5 px wide along object borders. Ground truth must be binary,
so every void pixel takes the label of its **nearest non-void pixel** (Euclidean distance,
ties broken by :func:`scipy.ndimage.distance_transform_edt`). The object boundary therefore
runs through the middle of the band, where the true edge lies; void never reaches the mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blursynth.errors import BlursynthError
from blursynth.imageio import image_size, read_image, read_palette_indices

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOID = 255
SPLITS = ("train", "val", "trainval")

#: A class is usable as the object when it covers at least this fraction of its image.
MIN_CLASS_FRACTION = 0.02
MIN_IMAGE_SIDE = 32
"""Images with a side under this many pixels are skipped: a crop of them around an object
keeps too little of it (VOC images are about 500 px)."""


def resolve_voc_root(path: str | Path) -> Path:
    """Find the ``VOC2012`` folder from ``VOC2012``, ``VOCdevkit`` or a folder holding
    ``VOCdevkit`` (an extracted tar).

    Raises
    ------
    BlursynthError
        When none of the three layouts is found.
    """
    path = Path(path)
    if not path.is_dir():
        raise BlursynthError("VOC folder not found", path)
    for candidate in (path, path / "VOC2012", path / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    raise BlursynthError(
        "not a PASCAL VOC folder: expected VOC2012/ (with JPEGImages/ and SegmentationClass/),"
        " VOCdevkit/ or a folder holding VOCdevkit/",
        path,
    )


@dataclass(frozen=True)
class VOCItem:
    """One usable image: its size and the classes large enough to be the object.

    ``classes`` maps class index to its bounding box ``(y0, x0, y1, x1)`` (end exclusive).
    """

    id: str
    height: int
    width: int
    classes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)


class VOCSegmentation:
    """The segmentation split of a VOC 2012 tree.

    ``__init__`` resolves paths and reads the split list (fast, no decoding);
    :meth:`scan` reads every mask once to find image sizes and usable classes;
    :meth:`load` decodes one image with its labels.

    Parameters
    ----------
    root : path
        ``VOC2012``, ``VOCdevkit`` or a folder holding ``VOCdevkit``.
    split : {"train", "val", "trainval"}
    """

    def __init__(self, root, split: str = "train"):
        if split not in SPLITS:
            raise BlursynthError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.root = resolve_voc_root(root)
        self.split = split
        list_path = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_path.is_file():
            raise BlursynthError("split list not found", list_path)
        self.ids = [ln.strip() for ln in list_path.read_text().splitlines() if ln.strip()]
        if not self.ids:
            raise BlursynthError("split list is empty", list_path)

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.root / "SegmentationClass" / f"{image_id}.png"

    def class_name(self, cls: int) -> str:
        return CLASSES[cls]

    def scan_one(self, image_id: str, min_fraction: float = MIN_CLASS_FRACTION) -> VOCItem:
        """Check one item without decoding its image; find its usable classes.

        Raises
        ------
        BlursynthError
            Missing or unreadable files, a mask whose size differs from its image.
        """
        width, height = header_size(
            self.image_path(image_id), "image listed in the split is missing"
        )
        mask_path = self.mask_path(image_id)
        if not mask_path.exists():
            raise BlursynthError("mask listed in the split is missing", mask_path)
        labels = read_palette_indices(mask_path)
        if labels.shape != (height, width):
            raise BlursynthError(
                f"mask is {labels.shape[1]}x{labels.shape[0]} but its image is {width}x{height}",
                mask_path,
            )
        return VOCItem(image_id, height, width, usable_classes(labels, min_fraction))

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Decode one item.

        Returns
        -------
        image : float32 (H, W, 3) in [0, 1]
        labels : uint8 (H, W), palette indices with the void band filled (see module doc)
        """
        image = read_image(self.image_path(image_id))
        labels = read_palette_indices(self.mask_path(image_id))
        if labels.shape != image.shape[:2]:
            raise BlursynthError(
                f"mask is {labels.shape[1]}x{labels.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}",
                self.mask_path(image_id),
            )
        return image, fill_void(labels)


def header_size(image_path: Path, missing: str = "file not found") -> tuple[int, int]:
    """``(width, height)`` from an image's header (no decoding), refusing a missing or
    unreadable file and a side under :data:`MIN_IMAGE_SIDE`."""
    if not Path(image_path).exists():
        raise BlursynthError(missing, image_path)
    width, height = image_size(image_path)  # header only: cheap
    if min(width, height) < MIN_IMAGE_SIDE:
        raise BlursynthError(
            f"image is {width}x{height}, under the {MIN_IMAGE_SIDE}-px minimum side", image_path
        )
    return width, height


def usable_classes(labels: np.ndarray, min_fraction: float = MIN_CLASS_FRACTION):
    """Classes 1..20 covering at least ``min_fraction`` of the image, with bounding boxes.

    Returns
    -------
    dict[int, tuple[int, int, int, int]]
        class index -> ``(y0, x0, y1, x1)``, end exclusive, sorted by class.
    """
    counts = np.bincount(labels.ravel(), minlength=256)
    out = {}
    for cls in range(1, len(CLASSES)):
        if counts[cls] and counts[cls] >= min_fraction * labels.size:
            rows = np.flatnonzero((labels == cls).any(axis=1))
            cols = np.flatnonzero((labels == cls).any(axis=0))
            out[cls] = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return out


def fill_void(labels: np.ndarray) -> np.ndarray:
    """Give every void (255) pixel the label of its nearest non-void pixel.

    An all-void mask is returned as all background.
    """
    void = labels == VOID
    if not void.any():
        return labels
    if void.all():
        return np.zeros_like(labels)
    from scipy import ndimage  # here: importing scipy.ndimage costs every CLI call ~0.4 s

    idx = ndimage.distance_transform_edt(void, return_distances=False, return_indices=True)
    return labels[idx[0], idx[1]]


def object_mask(labels: np.ndarray, cls: int) -> np.ndarray:
    """Binary object mask ``m`` (float32 (H, W), 1 on class ``cls``); void is filled first."""
    return (fill_void(labels) == cls).astype(np.float32)


def voc_palette() -> list[int]:
    """The standard 256-entry PASCAL VOC colour map (bit-interleaved), flat ``[r, g, b, ...]``.

    For writing palette masks that VOC tools display with the usual colours.
    """
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette
