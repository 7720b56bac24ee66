"""Draw every random parameter of one synthetic sample into a record.

The record is all the renderer needs: rendering has no randomness, so a record saved beside
the output re-renders its image exactly (:func:`blursynth.generate.rerender`).

Each sample has its own stream, ``np.random.SeedSequence(seed, spawn_key=(model_index,
index))`` with ``model_index`` the model's ``spawn_index`` (0 motion, 1 defocus, 2 mixed,
3 pan; :mod:`blursynth.blurmodels`), so a sample does not depend on ``--jobs``, on ``--n`` or
on which other models are generated in the same run. The sampler draws the scene and the
shared camera effects; the model draws its own parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from blursynth import blurmodels
from blursynth.blurmodels._parts import SHAKE_STEPS, shake_trajectory  # noqa: F401 (API)
from blursynth.sources.voc import CLASSES, VOCItem

#: Blur models, in spawn-key order (:mod:`blursynth.blurmodels`): the report's two; ``mixed``
#: (a sharp object and a moving object over a defocused background: every class in one
#: image); ``pan`` (a panning shot: a sharp object over a background streaked by the motion
#: kernel). New models take the next spawn index.
MODELS = blurmodels.names()
#: Motion kernels: the report's straight line, or a random camera-shake trajectory.
MOTION_KERNELS = ("line", "shake")
#: Defocus kernels: the report's Gaussian, or an anti-aliased disk (circle of confusion).
DEFOCUS_KERNELS = ("gaussian", "disk")
#: Where the background comes from: another photograph (the report's composite: the object
#: pasted over it) or the object's own (the object stays where it was photographed, and what
#: lies behind it is filled in from its surroundings).
BACKGROUNDS = ("other", "own")
#: Which renderings ``min_background_sharpness`` filters: every one, or only those whose
#: truth calls the background sharp (the motion model's, and every sharp uniform image).
SHARP_BACKGROUND_SCOPES = ("every", "sharp-truth")
CAMERA_OPTIONS = (
    "motion_kernel",
    "defocus_kernel",
    "radius",
    "linear_light",
    "noise",
    "noise_a",
    "noise_b",
    "jpeg",
    "uniform_share",
    "background",
    "min_background_sharpness",
    "sharp_background_for",
)
#: The shared record fields written only when set (a record of the report's models is what
#: it always was).
RECORD_EXTRAS = (
    "linear_light",
    "noise_a",
    "noise_b",
    "noise_seed",
    "jpeg",
    "uniform",
    "fg2",
    "cls2",
    "class_name2",
    "fg2_box",
    "background",
)
UNIFORM_KINDS = ("sharp", "blurred")
#: Model fields every record has carried since the first release, null where its model does
#: not draw them (so old and new ``records.jsonl`` lines have the same keys).
LEGACY_BLUR_FIELDS = ("length", "angle", "sigma1", "sigma2")


MAX_KERNEL_EXTENT = 255
"""The widest blur kernel a sample may draw, in pixels (a motion length, six sigmas of a
Gaussian, a disk's diameter): wider ones would blur the image to its mean and cost memory
without bound (``--motion-length 100000`` asked for a 74 GiB kernel)."""


@dataclass(frozen=True)
class SampleParams:
    """Ranges the sampler draws from (uniform; ``(lo, hi)`` half-open).

    Attributes
    ----------
    length : motion length in pixels, U[5, 15).
    angle : motion direction in degrees, U[0, 180).
    sigma1 : defocus (background) Gaussian sigma k1, U[1, 2).
    sigma2 : sigma of the small Gaussian k2 that softens the object edge in eq. (2); fixed.
    motion_kernel : ``"line"`` (the report's) or ``"shake"``: a random camera trajectory
        (:func:`shake_trajectory`) of total length drawn from ``length``.
    defocus_kernel : ``"gaussian"`` (the report's k1) or ``"disk"``: an anti-aliased circle
        of confusion of radius U[2, 4) px (``radius``; a disk of radius r has the standard
        deviation r/2 of the Gaussian it replaces).
    linear_light : blur and composite in linear light (sRGB decoded, then encoded back).
    noise : add Poisson-Gaussian sensor noise in linear light, ``z = x + sqrt(a x + b) n``,
        with ``a`` (shot) log-uniform in ``noise_a`` and ``b`` (read, a variance)
        log-uniform in ``noise_b``.
    jpeg : JPEG quality of a final encode/decode round trip (None: none).
    uniform_share : share of images with no object: the background alone, half of them sharp
        everywhere, half blurred everywhere (by the model's kernel: motion and pan k,
        defocus k1). Mixed images always hold their objects.
    background : ``"other"`` (the report's: the object pasted over a crop of another
        photograph) or ``"own"``: the object's own photograph, same crop, so the object
        stays where it was taken, in its own light and surroundings; what lies behind it
        is filled in from around it (:func:`blursynth.render.fill_behind`) before the
        background is blurred or the object moved. A uniform image is then the photograph
        itself, sharp or blurred everywhere.
    min_background_sharpness : only photographs whose background is at least this sharp
        (:func:`blursynth.baselines.background_sharpness`, in [0, 1]) serve as backgrounds
        (and, with ``background="own"``, as scenes); 0 (the default): every photograph.
        Saliency photographs often have an out-of-focus background, which a composite
        would otherwise call sharp. The generator measures it; the sampler takes the
        resulting ``backgrounds`` pool (:func:`sample_record`).
    sharp_background_for : ``"every"`` (the default): the pool serves every rendering;
        ``"sharp-truth"``: only the renderings whose truth calls the background sharp (the
        motion model's, and the sharp uniform images of any model), where an out-of-focus
        background would be a wrong label; the others (defocus, pan, mixed, blurred uniform)
        draw from every photograph, as their background is blurred anyway. The uniform
        kind is then drawn before the images (it decides the pool).

    The defaults are the report's models; the camera options draw after the report's
    parameters, so they never change what a default run draws.
    """

    length: tuple[float, float] = (5.0, 15.0)
    angle: tuple[float, float] = (0.0, 180.0)
    sigma1: tuple[float, float] = (1.0, 2.0)
    sigma2: float = 1.0
    motion_kernel: str = "line"
    defocus_kernel: str = "gaussian"
    radius: tuple[float, float] = (2.0, 4.0)
    linear_light: bool = False
    noise: bool = False
    noise_a: tuple[float, float] = (1e-4, 1e-2)
    noise_b: tuple[float, float] = (1e-6, 1e-4)
    jpeg: int | None = None
    uniform_share: float = 0.0
    background: str = "other"
    min_background_sharpness: float = 0.0
    sharp_background_for: str = "every"

    def __post_init__(self):
        for name in ("length", "angle", "sigma1", "radius", "noise_a", "noise_b"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name} range must have lo <= hi, got {(lo, hi)}")
        if self.length[0] < 1:
            raise ValueError(f"motion length must be >= 1, got {self.length}")
        for name, what, top in (
            ("length", "motion length", MAX_KERNEL_EXTENT),
            ("sigma1", "defocus sigma", MAX_KERNEL_EXTENT / 6),
            ("radius", "disk radius", MAX_KERNEL_EXTENT / 2),
        ):
            value = getattr(self, name)
            if not all(math.isfinite(v) for v in value) or value[1] > top:
                raise ValueError(
                    f"{what} must be finite and at most {top:g}, got {value} (a kernel wider "
                    f"than the {MAX_KERNEL_EXTENT}-px cap blurs a crop to its mean)"
                )
        if self.sigma1[0] < 0 or self.sigma2 < 0:
            raise ValueError(f"sigmas must be >= 0, got {self.sigma1} and {self.sigma2}")
        if self.motion_kernel not in MOTION_KERNELS:
            raise ValueError(
                f"motion kernel must be one of {MOTION_KERNELS}, got {self.motion_kernel!r}"
            )
        if self.defocus_kernel not in DEFOCUS_KERNELS:
            raise ValueError(
                f"defocus kernel must be one of {DEFOCUS_KERNELS}, got {self.defocus_kernel!r}"
            )
        if self.radius[0] < 0.5:
            raise ValueError(f"disk radius must be >= 0.5, got {self.radius}")
        if self.noise_a[0] <= 0 or self.noise_b[0] <= 0:
            raise ValueError(f"noise ranges must be > 0, got {self.noise_a} and {self.noise_b}")
        if self.jpeg is not None and not 1 <= self.jpeg <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {self.jpeg}")
        if not 0.0 <= self.uniform_share <= 1.0:
            raise ValueError(f"uniform share must be in [0, 1], got {self.uniform_share}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if not 0.0 <= self.min_background_sharpness <= 1.0:
            raise ValueError(
                f"background sharpness must be in [0, 1], got {self.min_background_sharpness}"
            )
        if self.sharp_background_for not in SHARP_BACKGROUND_SCOPES:
            raise ValueError(
                f"sharp backgrounds must be for one of {SHARP_BACKGROUND_SCOPES}, "
                f"got {self.sharp_background_for!r}"
            )

    def run_dict(self) -> dict:
        """The parameters as a run records them: the camera options only when one of them
        is not the report's default, so a default run's ``run.json`` is what it always was."""
        d = asdict(self)
        if all(d[name] == CAMERA_DEFAULTS[name] for name in CAMERA_OPTIONS):
            for name in CAMERA_OPTIONS:
                del d[name]
        return d


CAMERA_DEFAULTS = {name: getattr(SampleParams(), name) for name in CAMERA_OPTIONS}


@dataclass(frozen=True)
class SampleRecord:
    """Everything drawn for one output image: the scene (shared by every model) and the
    model's own draws (``blur``).

    Boxes are ``(y0, x0, y1, x1)`` in the source image, end exclusive; both crops have the
    common size ``(height, width) = (min of the two heights, min of the two widths)``.
    ``blur`` holds the fields the model draws (:attr:`blursynth.blurmodels.BlurModel.fields`):
    motion ``length``/``angle`` (or a shake ``trajectory``), defocus ``sigma1`` (or a disk's
    ``radius``) and ``sigma2`` (the object's edge); pan the motion ones and ``sigma2``;
    mixed all of them. A model with a second object (mixed: ``fg`` is the sharp object, over
    the defocused ``bg``; ``fg2`` the moving one) fills ``fg2``, ``cls2``, ``class_name2``,
    ``fg2_box``. ``background`` is ``"own"`` when ``bg`` is ``fg``'s own photograph and
    crop, with the object filled in behind (None: another photograph, the report's
    composite).

    On disk (:meth:`to_dict`) a record is one flat JSON object, as it always was.
    """

    name: str
    model: str
    index: int
    seed: int
    spawn_key: tuple[int, ...]  # (model, index), and the attempt of a redraw
    fg: str
    bg: str
    cls: int
    class_name: str
    fg_box: tuple[int, int, int, int]
    bg_box: tuple[int, int, int, int]
    blur: Mapping[str, Any] = field(default_factory=dict, hash=False)
    linear_light: bool | None = None
    noise_a: float | None = None
    noise_b: float | None = None
    noise_seed: int | None = None
    jpeg: int | None = None
    uniform: str | None = None
    fg2: str | None = None
    cls2: int | None = None
    class_name2: str | None = None
    fg2_box: tuple[int, int, int, int] | None = None
    background: str | None = None

    @property
    def blur_model(self) -> blurmodels.BlurModel:
        return blurmodels.get(self.model)

    def to_dict(self) -> dict:
        """The record as one flat JSON-ready object: the shared fields (the camera's only when
        set), :data:`LEGACY_BLUR_FIELDS` (null where the model does not draw them), then the
        model's own; so a record of the report's models is what it always was."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "blur"}
        for name in RECORD_EXTRAS:
            if d[name] is None:
                del d[name]
        return {**d, **dict.fromkeys(LEGACY_BLUR_FIELDS), **self.blur}

    @classmethod
    def from_dict(cls, d: dict) -> SampleRecord:
        """A record from :meth:`to_dict`'s object (of this release or any earlier one); a
        model that is not registered raises ValueError naming the choices."""
        model = blurmodels.get(d.get("model"))
        shared = {f.name for f in fields(cls)} - {"blur"}
        values = {k: _tuples(v) for k, v in d.items() if k in shared}
        blur = {k: _tuples(d[k]) for k in model.fields if d.get(k) is not None}
        return cls(**values, blur=blur)


def _tuples(value):
    """JSON lists back to the record's tuples (nested: a trajectory is a tuple of pairs)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def sample_name(model: str, index: int) -> str:
    """``motion0001`` for index 0 (the CUHK naming)."""
    return f"{model}{index + 1:04d}"


SAMPLE_NAME = re.compile(r"([a-z]+)(\d{4,})")
"""A :func:`sample_name`: the model, then ``index + 1`` (at least four digits)."""


def names_in_order(models, n: int):
    """The names of indices ``0..n-1`` of each model, in sorted (string) order, generated
    without holding them: ``motion1000`` < ``motion10000`` < ``motion1001``."""
    assert not any(a != b and b.startswith(a) for a in models for b in models)
    for model in sorted(models):
        for number in _numbers_in_string_order(n):
            yield sample_name(model, number - 1)


def _numbers_in_string_order(n: int):
    """``1..n`` in the order of their ``%04d`` strings (a depth-first walk of the digits)."""

    def extend(v):  # v, then every number written with v's digits as a prefix
        yield v
        for w in range(v * 10, min(v * 10 + 9, n) + 1):
            yield from extend(w)

    for v in range(1, min(n, 9999) + 1):
        if v >= 1000:  # numbers of five digits and more start with one of these
            yield from extend(v)
        else:
            yield v


def sample_record(
    items: Sequence[VOCItem],
    model: str,
    index: int,
    seed: int,
    params: SampleParams | None = None,
    class_name=None,
    backgrounds: Sequence[int] | None = None,
    attempt: int = 0,
) -> SampleRecord:
    """Draw one sample.

    Parameters
    ----------
    items : sequence of VOCItem
        Candidate images; foregrounds are those with a usable class, backgrounds any other.
    model : a registered blur model (:data:`MODELS`).
    index, seed : the 0-based sample index within its model; the run's root seed.
    params : SampleParams, optional
    class_name : callable, optional
        ``class_name(item_id, cls)`` for the record (default: the VOC class names).
    backgrounds : sequence of int, optional
        Indices of the items that may serve as backgrounds (with ``params.background ==
        "own"``, as scenes); default: all (the pool ``params.min_background_sharpness``
        makes, :func:`blursynth.scenes.sharp_backgrounds`). With
        ``params.sharp_background_for == "sharp-truth"`` it serves only the samples whose
        truth calls the background sharp (:func:`sharp_truth_background`).
    attempt : int
        0 for the sample's own stream; ``k > 0`` draws the same sample again from the stream
        ``spawn_key + (k,)`` (a redraw, when a source of the first draw fails to load).

    The scene is drawn first (:func:`_draw_scene`), then the model's own parameters
    (:meth:`~blursynth.blurmodels.BlurModel.draw`), then the camera's.
    """
    params = SampleParams() if params is None else params
    blur_model = blurmodels.get(model)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    if backgrounds is not None and not backgrounds:
        raise ValueError("no item may serve as background")
    key = (blur_model.spawn_index, int(index)) + ((int(attempt),) if attempt else ())
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
    early = params.sharp_background_for == "sharp-truth"
    uniform = _draw_uniform(rng, blur_model, params) if early else None
    if early and not sharp_truth_background(model, uniform):
        backgrounds = None  # a blurred background's source need not be sharp
    name = class_name or (lambda _id, c: CLASSES[c])
    scene = _draw_scene(rng, items, blur_model.objects, params.background, backgrounds, name)
    drawn = blur_model.draw(rng, params)
    blur = {**drawn, **blur_model.draw_camera(rng, drawn, params)}
    scene.update(_camera_draws(rng, params))
    if not early:  # the last draw, so a run without the camera options draws what it did
        uniform = _draw_uniform(rng, blur_model, params)
    if uniform is not None:
        scene["uniform"] = uniform
    blur = {k: v for k, v in blur.items() if v is not None}
    return SampleRecord(
        sample_name(model, index), model, int(index), int(seed), key, blur=blur, **scene
    )


def _draw_scene(rng: np.random.Generator, items, objects: int, background: str, pool, name):
    """The photographs, classes and crops of a sample: the record's shared fields ``fg``,
    ``bg``, ``cls``, ``class_name``, ``fg_box``, ``bg_box`` (and those of a second object,
    and ``background``).

    Foreground and background are different images (when there are two), or with
    ``background == "own"`` the same image and crop. The class is drawn uniformly among the
    usable classes of the foreground. The foreground crop is drawn uniformly among the
    offsets that keep the class's bounding box inside the crop (or the crop inside the box,
    along an axis where the box is larger), so the object stays in view; the background crop
    is uniform. A model of two ``objects`` (mixed) also draws a second foreground (another
    image when there is one); the common crop size is then the smallest of the three images.
    """
    own = background == "own"
    fg_pool = _foreground_pool(items, pool if own else None)
    fg, bg, fg2 = _draw_images(rng, items, fg_pool, objects, pool)
    if own:
        bg = fg
    cls, fg_box, bg_box, extra = _draw_placement(rng, fg, bg, fg2, own, name)
    return {
        "fg": fg.id,
        "bg": bg.id,
        "cls": cls,
        "class_name": name(fg.id, cls),
        "fg_box": fg_box,
        "bg_box": bg_box,
        **extra,
    }


def _draw_placement(rng: np.random.Generator, fg, bg, fg2, own: bool, name):
    """The object's class and the crops: ``(cls, fg_box, bg_box, extra)``, ``extra`` the
    record fields of the moving object (``fg2``, mixed only) and of an own background."""
    cls = _draw_class(rng, fg)
    cls2 = _draw_class(rng, fg2) if fg2 is not None else None
    h = min(it.height for it in (fg, bg, fg2) if it is not None)
    w = min(it.width for it in (fg, bg, fg2) if it is not None)
    fg_box = _object_crop(rng, fg, cls, h, w)
    extra = {}
    if fg2 is not None:
        extra.update(
            fg2=fg2.id,
            cls2=cls2,
            fg2_box=_object_crop(rng, fg2, cls2, h, w),
            class_name2=name(fg2.id, cls2),
        )
    by = int(rng.integers(bg.height - h + 1))
    bx = int(rng.integers(bg.width - w + 1))
    bg_box = fg_box if own else (by, bx, by + h, bx + w)
    if own:
        extra["background"] = "own"
    return cls, fg_box, bg_box, extra


def _foreground_pool(items, scenes: Sequence[int] | None) -> list[int]:
    """Indices of the items with a usable class (among ``scenes`` when given: an object
    over its own background needs its photograph to be an allowed background)."""
    pool = [i for i, it in enumerate(items) if it.classes]
    if scenes is not None:
        pool = sorted(set(pool) & set(scenes))
    if not pool:
        raise ValueError("no item has a usable class")
    return pool


def _draw_images(rng: np.random.Generator, items, fg_pool: list[int], objects: int, backgrounds):
    """The foreground, the background (any other image of ``backgrounds``, or of all items,
    when there is one) and, for a model of two ``objects`` (mixed), the second object
    (another foreground when there is one)."""
    fi = fg_pool[int(rng.integers(len(fg_pool)))]
    if backgrounds is not None:
        pool = [i for i in backgrounds if i != fi] or list(backgrounds)
        bi = pool[int(rng.integers(len(pool)))]
    elif len(items) > 1:
        bi = int(rng.integers(len(items) - 1))
        bi += bi >= fi  # any image but the foreground
    else:
        bi = fi
    fg2 = None
    if objects == 2:
        others = [i for i in fg_pool if i != fi] or fg_pool
        fg2 = items[others[int(rng.integers(len(others)))]]
    return items[fi], items[bi], fg2


def _draw_class(rng: np.random.Generator, item: VOCItem) -> int:
    classes = sorted(item.classes)
    return int(classes[int(rng.integers(len(classes)))])


def _object_crop(rng: np.random.Generator, item: VOCItem, cls: int, h: int, w: int):
    """An ``h x w`` crop box of ``item`` that keeps class ``cls`` in view."""
    y0, x0, y1, x1 = item.classes[cls]
    fy = _offset_keeping(rng, y0, y1, h, item.height)
    fx = _offset_keeping(rng, x0, x1, w, item.width)
    return (fy, fx, fy + h, fx + w)


def _offset_keeping(rng: np.random.Generator, lo: int, hi: int, crop: int, full: int) -> int:
    """Crop offset along one axis that keeps ``[lo, hi)`` inside the crop, or the crop inside
    ``[lo, hi)`` when the interval is longer than the crop."""
    if hi - lo <= crop:
        first, last = max(0, hi - crop), min(lo, full - crop)
    else:
        first, last = lo, hi - crop
    return int(rng.integers(first, last + 1))


def _camera_draws(rng: np.random.Generator, params: SampleParams) -> dict:
    """What the shared camera options add to a record, drawn after the model's own (so a run
    with the defaults draws exactly what it always drew)."""
    extra: dict = {}
    if params.linear_light:
        extra["linear_light"] = True
    if params.noise:
        extra["noise_a"] = float(np.exp(rng.uniform(*np.log(params.noise_a))))
        extra["noise_b"] = float(np.exp(rng.uniform(*np.log(params.noise_b))))
        extra["noise_seed"] = int(rng.integers(2**63))
    if params.jpeg is not None:
        extra["jpeg"] = int(params.jpeg)
    return extra


def _draw_uniform(rng: np.random.Generator, model, params: SampleParams) -> str | None:
    """Whether the image holds no object: ``"sharp"`` or ``"blurred"`` everywhere (a share
    ``params.uniform_share`` of the images of a model that allows it, half each), else None."""
    if model.uniform and params.uniform_share > 0 and rng.random() < params.uniform_share:
        return UNIFORM_KINDS[int(rng.integers(2))]
    return None


def sharp_truth_background(model: str, uniform: str | None) -> bool:
    """Whether the truth of a rendering calls its background photograph's pixels sharp: a
    motion image's (the object moves over it) and a sharp uniform image's."""
    return uniform == "sharp" or (uniform is None and blurmodels.get(model).sharp_background)
