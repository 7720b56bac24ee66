"""Draw every random parameter of one synthetic sample into a record.

The record is all the renderer needs: rendering has no randomness, so a record saved beside
the output re-renders its image exactly (:func:`blursynth.generate.rerender`).

Each sample has its own stream, ``np.random.SeedSequence(seed, spawn_key=(model_index,
index))`` with ``model_index`` 0 for motion and 1 for defocus, so a sample does not depend
on ``--jobs``, on ``--n`` or on whether the other model is generated in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from blursynth.schema import KNOWN_BLUR_TYPES
from blursynth.sources.voc import CLASSES, VOCItem

#: Blur models, in spawn-key order.
MODELS = KNOWN_BLUR_TYPES


@dataclass(frozen=True)
class SampleParams:
    """Ranges the sampler draws from (uniform; ``(lo, hi)`` half-open).

    Attributes
    ----------
    length : motion length in pixels, U[5, 15).
    angle : motion direction in degrees, U[0, 180).
    sigma1 : defocus (background) Gaussian sigma k1, U[1, 2).
    sigma2 : sigma of the small Gaussian k2 that softens the object edge in eq. (2); fixed.
    """

    length: tuple[float, float] = (5.0, 15.0)
    angle: tuple[float, float] = (0.0, 180.0)
    sigma1: tuple[float, float] = (1.0, 2.0)
    sigma2: float = 1.0

    def __post_init__(self):
        for name in ("length", "angle", "sigma1"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} range must have lo <= hi, got {(lo, hi)}")
        if self.length[0] < 1:
            raise ValueError(f"motion length must be >= 1, got {self.length}")
        if self.sigma1[0] < 0 or self.sigma2 < 0:
            raise ValueError(f"sigmas must be >= 0, got {self.sigma1} and {self.sigma2}")


@dataclass(frozen=True)
class SampleRecord:
    """Everything drawn for one output image.

    Boxes are ``(y0, x0, y1, x1)`` in the source image, end exclusive; both crops have the
    common size ``(height, width) = (min of the two heights, min of the two widths)``.
    Motion records carry ``length``/``angle``; defocus records ``sigma1``/``sigma2``.
    """

    name: str
    model: str
    index: int
    seed: int
    spawn_key: tuple[int, int]
    fg: str
    bg: str
    cls: int
    class_name: str
    fg_box: tuple[int, int, int, int]
    bg_box: tuple[int, int, int, int]
    length: float | None = None
    angle: float | None = None
    sigma1: float | None = None
    sigma2: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SampleRecord:
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(**values)


def sample_name(model: str, index: int) -> str:
    """``motion0001`` for index 0 (the CUHK naming)."""
    return f"{model}{index + 1:04d}"


def sample_record(
    items: Sequence[VOCItem], model: str, index: int, seed: int, params: SampleParams | None = None
) -> SampleRecord:
    """Draw one sample.

    Parameters
    ----------
    items : sequence of VOCItem
        Candidate images; foregrounds are those with a usable class, backgrounds any other.
    model : {"motion", "defocus"}
    index : int
        0-based sample index within its model.
    seed : int
        Root seed of the run.
    params : SampleParams, optional
        Default :class:`SampleParams()`.

    Notes
    -----
    Foreground and background are different images (when there are two). The class is drawn
    uniformly among the usable classes of the foreground. The foreground crop is drawn
    uniformly among the offsets that keep the class's bounding box inside the crop (or the
    crop inside the box, along an axis where the box is larger), so the object stays in view;
    the background crop is uniform.
    """
    params = SampleParams() if params is None else params
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    fg_pool = [i for i, it in enumerate(items) if it.classes]
    if not fg_pool:
        raise ValueError("no item has a usable class")
    key = (MODELS.index(model), int(index))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))

    fi = fg_pool[int(rng.integers(len(fg_pool)))]
    if len(items) > 1:
        bi = int(rng.integers(len(items) - 1))
        bi += bi >= fi  # any image but the foreground
    else:
        bi = fi
    fg, bg = items[fi], items[bi]
    classes = sorted(fg.classes)
    cls = classes[int(rng.integers(len(classes)))]
    h, w = min(fg.height, bg.height), min(fg.width, bg.width)
    y0, x0, y1, x1 = fg.classes[cls]
    fy = _offset_keeping(rng, y0, y1, h, fg.height)
    fx = _offset_keeping(rng, x0, x1, w, fg.width)
    by = int(rng.integers(bg.height - h + 1))
    bx = int(rng.integers(bg.width - w + 1))

    blur = {}
    if model == "motion":
        blur["length"] = float(rng.uniform(*params.length))
        blur["angle"] = float(rng.uniform(*params.angle))
    else:
        blur["sigma1"] = float(rng.uniform(*params.sigma1))
        blur["sigma2"] = float(params.sigma2)
    return SampleRecord(
        name=sample_name(model, index),
        model=model,
        index=int(index),
        seed=int(seed),
        spawn_key=key,
        fg=fg.id,
        bg=bg.id,
        cls=int(cls),
        class_name=CLASSES[cls],
        fg_box=(fy, fx, fy + h, fx + w),
        bg_box=(by, bx, by + h, bx + w),
        **blur,
    )


def _offset_keeping(rng: np.random.Generator, lo: int, hi: int, crop: int, full: int) -> int:
    """Crop offset along one axis that keeps ``[lo, hi)`` inside the crop, or the crop inside
    ``[lo, hi)`` when the interval is longer than the crop."""
    if hi - lo <= crop:
        first, last = max(0, hi - crop), min(lo, full - crop)
    else:
        first, last = lo, hi - crop
    return int(rng.integers(first, last + 1))
