"""The CUHK blur detection dataset (Shi, Xu & Jia, CVPR 2014) and blursynth's own output.

CUHK layout: ``image/motion0001.jpg`` (some ``.JPG``), ``gt/motion0001.png``; stems
``motion####`` and ``out_of_focus####``; masks mode L (a few RGBA), 255 = blurred.
``blursynth generate`` writes the same layout with stems ``motion####`` / ``defocus####``.
"""

from __future__ import annotations

import re

from blursynth.errors import BlursynthError
from blursynth.sources.folder import FolderSource

_PREFIXES = (("motion", "motion"), ("out_of_focus", "defocus"), ("defocus", "defocus"))


def blur_type_from_stem(stem: str) -> str:
    """``motion0001`` -> motion; ``out_of_focus0001`` / ``defocus0001`` -> defocus."""
    for prefix, kind in _PREFIXES:
        if re.fullmatch(rf"{prefix}\d+", stem):
            return kind
    return "unknown"


class ShiSource(FolderSource):
    """CUHK blur detection dataset: blur type from the file name, binary masks required."""

    def __init__(self, root, **options):
        options.setdefault("strict_binary", True)
        super().__init__(root, **options)
        unknown = [it.image_path.name for it in self.items if it.blur_type == "unknown"]
        if unknown:
            raise BlursynthError(
                f"{len(unknown)} image(s) are not named motion#### or out_of_focus#### "
                f"(e.g. {unknown[0]}); use --source folder for other layouts",
                self.root,
            )

    def blur_type_of(self, stem: str) -> str:
        return blur_type_from_stem(stem)
