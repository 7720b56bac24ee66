"""Any folder pair ``image/`` + ``gt/`` of images and blur masks, matched by file stem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blursynth.errors import BlursynthError
from blursynth.imageio import images_by_stem, read_image_u8, read_mask_u8
from blursynth.schema import POLARITIES


@dataclass(frozen=True)
class BlurItem:
    """One image with its mask. ``blur_type`` is ``"motion"``, ``"defocus"`` or ``"unknown"``."""

    stem: str
    image_path: Path
    mask_path: Path
    blur_type: str


class FolderSource:
    """Images in ``root/image`` with masks in ``root/gt`` (same stem, any image extension).

    Parameters
    ----------
    root : path
        The folder that holds ``image/`` and ``gt/``.
    polarity : {"blurred-white", "sharp-white"}
        What a white mask pixel means. CUHK (and blursynth) use ``blurred-white``; the DUT
        defocus dataset uses ``sharp-white``.
    threshold : int
        Mask grey levels ``>= threshold`` are white. Masks with grey levels at edges (DUT) are
        binarised this way.
    strict_binary : bool
        When true, a mask with values other than 0 and 255 is an error (the CUHK masks are
        binary; a grey mask there means a wrong file).
    image_dir, gt_dir : str
        Sub-folder names.
    """

    default_blur_type = "unknown"

    def __init__(
        self,
        root,
        *,
        polarity: str = "blurred-white",
        threshold: int = 128,
        strict_binary: bool = False,
        image_dir: str = "image",
        gt_dir: str = "gt",
    ):
        if polarity not in POLARITIES:
            raise BlursynthError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
        if not 0 < threshold <= 255:
            raise BlursynthError(f"mask threshold must be in 1..255, got {threshold}")
        self.root = Path(root)
        self.polarity = polarity
        self.threshold = int(threshold)
        self.strict_binary = strict_binary
        image_root, gt_root = self.root / image_dir, self.root / gt_dir
        if not self.root.is_dir():
            raise BlursynthError("root folder not found", self.root)
        for folder in (image_root, gt_root):
            if not folder.is_dir():
                raise BlursynthError(
                    f"expected sub-folders '{image_dir}/' and '{gt_dir}/'; '{folder.name}/' is"
                    " missing",
                    self.root,
                )
        masks = images_by_stem(gt_root)
        self.items: list[BlurItem] = []
        self.missing_masks: list[Path] = []
        for stem, path in sorted(images_by_stem(image_root).items()):
            if stem in masks:
                self.items.append(BlurItem(stem, path, masks[stem], self.blur_type_of(stem)))
            else:
                self.missing_masks.append(path)
        if not self.items:
            raise BlursynthError(
                f"no image in '{image_dir}/' has a mask of the same name in '{gt_dir}/'", self.root
            )

    def blur_type_of(self, stem: str) -> str:
        """Blur type of an item from its file stem."""
        return self.default_blur_type

    def __getstate__(self) -> dict:
        """A pickled source loads items but does not list them: workers get one with every
        task, and the list of 800 CUHK items made that pickle 6 ms, longer than a decode."""
        state = dict(self.__dict__)
        state["items"], state["missing_masks"] = [], []
        return state

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> BlurItem:
        return self.items[index]

    def load(self, item: BlurItem) -> tuple[np.ndarray, np.ndarray]:
        """Load an item.

        Returns
        -------
        image : float32 (H, W, 3) in [0, 1]
        blur : bool (H, W), True where blurred

        Raises
        ------
        BlursynthError
            Unreadable files, a mask whose size differs from its image, a non-binary mask when
            ``strict_binary``.
        """
        image, blur = self.load_u8(item)
        return image.astype(np.float32) / np.float32(255.0), blur

    def load_classes(self, item: BlurItem) -> np.ndarray | None:
        """Per-pixel blur types (0 sharp, 1 motion, 2 defocus), for sources that have them
        (:class:`~blursynth.sources.synth.SynthSource`'s mixed images); None here."""
        return None

    def load_u8(self, item: BlurItem) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`load` with the image as stored, uint8 (H, W, 3): what dataset builders
        write, without a round trip through float."""
        image = read_image_u8(item.image_path)
        raw = read_mask_u8(item.mask_path)
        if raw.shape != image.shape[:2]:
            raise BlursynthError(
                f"mask is {raw.shape[1]}x{raw.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}",
                item.mask_path,
            )
        # a count is ~10x cheaper than np.unique's sort; unique only to word the error
        if self.strict_binary and np.count_nonzero(raw) != np.count_nonzero(raw == 255):
            values = np.unique(raw)
            raise BlursynthError(
                f"mask is not binary (values {values[:6].tolist()}...); use --source folder"
                " with --threshold for grey masks",
                item.mask_path,
            )
        white = raw >= self.threshold
        blur = white if self.polarity == "blurred-white" else ~white
        return image, blur
