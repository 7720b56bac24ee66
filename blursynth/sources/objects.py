"""Scene sources for ``generate`` beyond VOC: any folder of photographs with object masks.

An object-mask folder holds ``image/<stem>.<ext>`` and ``mask/<stem>.png`` (any image
extension; saliency datasets such as ECSSD and DUTS, or a COCO export). A mask's white
(``>= threshold``) is the object, or the background with ``polarity="background-white"``.
Each image is one candidate foreground (class 1, ``"object"``) and a candidate background.

**Which objects are used** (the documented rule): an image is skipped if it cannot be read,
if its mask is missing or of another size, or if a side is under 32 px. Its object serves as
a foreground only if it covers at least 2 % and at most 80 % of the image
(:data:`MIN_OBJECT_FRACTION`, :data:`MAX_OBJECT_FRACTION`): smaller objects are lost in the
crop, and larger ones leave almost no background to blur; such images still serve as
backgrounds.

:class:`SceneSources` puts several sources (VOC and object folders) behind one interface:
ids are prefixed with the source's position (``"1:0001"``) when there is more than one, so a
record names its source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blursynth.errors import BlursynthError
from blursynth.imageio import IMAGE_EXTENSIONS, images_by_stem, read_image, read_mask_u8
from blursynth.sources.voc import VOCItem, header_size

MIN_OBJECT_FRACTION = 0.02
MAX_OBJECT_FRACTION = 0.80
OBJECT_POLARITIES = ("object-white", "background-white")
OBJECT_CLASS = 1


class ObjectFolder:
    """Photographs with object masks (``image/`` + ``mask/``), read like a VOC split.

    Parameters
    ----------
    root : path
        The folder holding ``image/`` and ``mask/``.
    threshold : int
        Mask grey levels ``>= threshold`` are white (soft masks such as DUTS': 128).
    polarity : {"object-white", "background-white"}
    """

    def __init__(self, root, *, threshold: int = 128, polarity: str = "object-white"):
        if polarity not in OBJECT_POLARITIES:
            raise BlursynthError(
                f"object polarity must be one of {OBJECT_POLARITIES}, got {polarity!r}"
            )
        if not 0 < threshold <= 255:
            raise BlursynthError(f"object mask threshold must be in 1..255, got {threshold}")
        self.root = Path(root)
        self.threshold = int(threshold)
        self.polarity = polarity
        for sub in ("image", "mask"):
            if not (self.root / sub).is_dir():
                raise BlursynthError(
                    f"expected sub-folders 'image/' and 'mask/' (an object-mask folder); "
                    f"'{sub}/' is missing",
                    self.root,
                )
        images = images_by_stem(self.root / "image")
        self._images = images
        self.ids = sorted(images)
        if not self.ids:
            raise BlursynthError("no image in 'image/'", self.root)

    def image_path(self, image_id: str) -> Path:
        found = self._images.get(image_id) if self._images else None
        if found is not None:
            return found
        for ext in (*IMAGE_EXTENSIONS, *(e.upper() for e in IMAGE_EXTENSIONS)):
            path = self.root / "image" / f"{image_id}{ext}"
            if path.is_file():  # a pickled folder (in a worker) finds its files by name
                return path
        raise BlursynthError("image not found", self.root / "image" / image_id)

    def __getstate__(self) -> dict:
        """Workers get this with every task: the id list and path map stay behind."""
        return {**self.__dict__, "ids": [], "_images": {}}

    def mask_path(self, image_id: str) -> Path:
        return self.root / "mask" / f"{image_id}.png"

    def class_name(self, cls: int) -> str:
        return "object"

    def _object(self, image_id: str) -> np.ndarray:
        raw = read_mask_u8(self.mask_path(image_id))
        white = raw >= self.threshold
        return white if self.polarity == "object-white" else ~white

    def scan_one(self, image_id: str, min_fraction: float = MIN_OBJECT_FRACTION) -> VOCItem:
        """Size and, if the object follows the rule, its bounding box as class 1.

        Raises
        ------
        BlursynthError
            Unreadable image or mask, a missing mask, a mask of another size, a small image.
        """
        width, height = header_size(self.image_path(image_id))
        if not self.mask_path(image_id).exists():
            raise BlursynthError("image has no mask of the same name", self.mask_path(image_id))
        obj = self._object(image_id)
        if obj.shape != (height, width):
            raise BlursynthError(
                f"mask is {obj.shape[1]}x{obj.shape[0]} but its image is {width}x{height}",
                self.mask_path(image_id),
            )
        fraction = obj.mean()
        if not min_fraction <= fraction <= MAX_OBJECT_FRACTION:
            return VOCItem(image_id, height, width, {})  # a background only
        rows = np.flatnonzero(obj.any(axis=1))
        cols = np.flatnonzero(obj.any(axis=0))
        box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
        return VOCItem(image_id, height, width, {OBJECT_CLASS: box})

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(image float32 (H, W, 3), labels uint8 (H, W))``: 1 on the object, 0 elsewhere."""
        image = read_image(self.image_path(image_id))
        obj = self._object(image_id)
        if obj.shape != image.shape[:2]:
            raise BlursynthError(
                f"mask is {obj.shape[1]}x{obj.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}",
                self.mask_path(image_id),
            )
        return image, obj.astype(np.uint8) * np.uint8(OBJECT_CLASS)


class SceneSources:
    """Several scene sources (VOC splits, object folders) as one, for ``generate``.

    With one source its ids are unchanged (records read as they always did); with several,
    an id is ``"<position>:<id>"``.
    """

    def __init__(self, sources: list):
        if not sources:
            raise BlursynthError("generate needs at least one source (--voc or --objects)")
        self.sources = list(sources)
        if len(self.sources) == 1:
            self.ids = list(self.sources[0].ids)
        else:
            self.ids = [f"{k}:{i}" for k, src in enumerate(self.sources) for i in src.ids]

    def _split(self, image_id: str):
        if len(self.sources) == 1:
            return self.sources[0], image_id
        k, _, inner = image_id.partition(":")
        if not k.isdigit() or int(k) >= len(self.sources):
            raise BlursynthError(f"no source {k!r} in this run (records from another run?)")
        return self.sources[int(k)], inner

    def __getstate__(self) -> dict:
        return {**self.__dict__, "ids": []}  # workers load by id; they need no list

    @property
    def roots(self) -> list[Path]:
        return [Path(src.root) for src in self.sources]

    def image_path(self, image_id: str) -> Path:
        src, inner = self._split(image_id)
        return src.image_path(inner)

    def mask_path(self, image_id: str) -> Path:
        src, inner = self._split(image_id)
        return src.mask_path(inner)

    def class_name(self, image_id: str, cls: int) -> str:
        src, _ = self._split(image_id)
        return src.class_name(cls)

    def scan_one(self, image_id: str, min_fraction: float) -> VOCItem:
        src, inner = self._split(image_id)
        item = src.scan_one(inner, min_fraction)
        return VOCItem(image_id, item.height, item.width, item.classes)

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        src, inner = self._split(image_id)
        return src.load(inner)
