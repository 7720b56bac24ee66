"""blursynth's own output (``blursynth generate``) read back as a blur-mask source."""

from __future__ import annotations

import re

import numpy as np

from blursynth import blurmodels
from blursynth.errors import BlursynthError
from blursynth.imageio import read_mask_u8
from blursynth.sources.folder import BlurItem, FolderSource
from blursynth.sources.shi import ShiSource, blur_type_from_stem


class SynthSource(ShiSource):
    """Output of ``blursynth generate`` (same layout; stems ``motion####``/``defocus####``,
    ``pan####`` for panning shots, ``mixed####`` for images that hold both blur types).

    A pan image's blur type is ``motion`` (its streaked background is all its blur). A mixed
    image's is ``unknown`` (it has both); its per-pixel truth is in ``classes/`` (0 sharp,
    1 motion, 2 defocus), read by :meth:`load_classes`.
    """

    def __init__(self, root, **options):
        options.setdefault("strict_binary", True)
        FolderSource.__init__(self, root, **options)
        odd = [it.image_path.name for it in self.items if not _is_synth_stem(it.stem)]
        if odd:
            raise BlursynthError(
                f"{len(odd)} image(s) are not named "
                f"{', '.join(f'{m}####' for m in blurmodels.names())} "
                f"(e.g. {odd[0]}); use --source folder for other layouts",
                self.root,
            )

    def blur_type_of(self, stem: str) -> str:
        return _blur_type(stem)

    def load_classes(self, item: BlurItem) -> np.ndarray | None:
        """uint8 (H, W): 0 sharp, 1 motion, 2 defocus, for a mixed image; None otherwise
        (one blur type: its blurred pixels are all of it)."""
        path = self.root / "classes" / f"{item.stem}.png"
        if not path.is_file():
            return None
        classes = read_mask_u8(path)
        if classes.max(initial=0) > 2:
            raise BlursynthError(f"classes map holds {int(classes.max())} (0..2 expected)", path)
        return classes


def generate_sources(root) -> list[dict] | None:
    """The source photographs of a ``generate`` run (its ``sources.json``: kind, root,
    licence), or None for a folder without one (older runs)."""
    import json
    from pathlib import Path

    path = Path(root) / "sources.json"
    if not path.is_file():
        return None
    try:
        entries = json.loads(path.read_text())
    except ValueError as exc:
        raise BlursynthError(f"unreadable sources list ({exc})", path) from None
    return entries if isinstance(entries, list) else None


def _model_of(stem: str):
    """The blur model whose images are named like ``stem`` (``motion0001``), or None."""
    match = re.fullmatch(r"([a-z]+)\d+", stem)
    return blurmodels.get(match[1]) if match and match[1] in blurmodels.names() else None


def _blur_type(stem: str) -> str:
    """The blur type a generated image's name says: its model's (``pan####`` is motion, its
    streaked background being all its blur; ``mixed####`` unknown, as it holds both), or
    CUHK's names."""
    model = _model_of(stem)
    if model is None:
        return blur_type_from_stem(stem)
    return model.blur_type or "unknown"


def _is_synth_stem(stem: str) -> bool:
    return _model_of(stem) is not None or blur_type_from_stem(stem) != "unknown"
