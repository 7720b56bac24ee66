"""What a blur model is: its draws, its kernels, its rendering and its truth, in one class.

A model is a :class:`BlurModel` subclass in its own module of this package, registered with
:func:`register`. The sampler (:mod:`blursynth.sampling`) draws the scene (photographs,
crops, classes; the shared camera effects) and asks the model for its own parameters; the
renderer (:mod:`blursynth.rerender`) loads the scene and asks the model for its kernels and
its image. Nothing else names a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Scene:
    """The loaded inputs of one rendering, float32 in [0, 1] (in linear light when the record
    says so): the object ``fg`` and its mask ``mask`` (1 on the object), the background
    ``bg`` (same height and width), and the further objects a model with ``objects > 1``
    draws, as ``(image, mask)`` pairs in the order of the record's ``fg2`` fields."""

    fg: np.ndarray
    bg: np.ndarray
    mask: np.ndarray
    others: tuple[tuple[np.ndarray, np.ndarray], ...] = ()


@dataclass(frozen=True)
class Rendering:
    """A model's output: ``image`` float32 (H, W, 3) in [0, 1]; ``soft`` float32 (H, W), how
    much of each pixel is blurred light; ``binary`` bool (H, W), the truth (True blurred);
    ``extra`` uint8 (H, W) maps keyed by the output folders the model adds
    (:attr:`BlurModel.outputs`)."""

    image: np.ndarray
    soft: np.ndarray
    binary: np.ndarray
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)


class BlurModel:
    """One image-formation model. Subclasses set the class attributes and the methods.

    Attributes
    ----------
    name : the model's name: ``--model NAME``, and the prefix of its images (``NAME0001``);
        lower-case letters, not a prefix of another model's name.
    spawn_index : its place in the spawn keys ``(spawn_index, index)`` of its samples. Fixed
        forever once released (every byte of its output depends on it); a new model takes
        the next free number.
    blur_type : ``"motion"`` or ``"defocus"`` when all of an image's blur is of that type
        (what ``--source synth`` reads from the name), None when an image holds several.
    fields : the record fields the model draws (its own; the scene's are shared).
    objects : objects in an image (the sampler draws each object's photograph, class and
        crop; ``mixed``: a sharp one and a moving one).
    uniform : whether ``--uniform-share`` may turn one of its images into the background
        alone, sharp or blurred everywhere (by :meth:`uniform_kernel`).
    sharp_background : whether its truth calls the background photograph's pixels sharp
        (``--sharp-background-for sharp-truth`` then draws from the sharp pool).
    outputs : output folders it writes beside ``image``, ``gt`` and ``soft``.
    """

    name: ClassVar[str]
    spawn_index: ClassVar[int]
    blur_type: ClassVar[str | None]
    fields: ClassVar[tuple[str, ...]]
    objects: ClassVar[int] = 1
    uniform: ClassVar[bool] = True
    sharp_background: ClassVar[bool] = False
    outputs: ClassVar[tuple[str, ...]] = ()

    def draw(self, rng: np.random.Generator, params) -> dict:
        """The report's parameters of one image (drawn before the camera options), from the
        ranges of ``params`` (a :class:`blursynth.sampling.SampleParams`)."""
        raise NotImplementedError

    def draw_camera(self, rng: np.random.Generator, drawn: dict, params) -> dict:
        """What the kernel options add (a shake trajectory, a disk radius), drawn after the
        report's parameters so a default run draws what it always drew; ``drawn`` is
        :meth:`draw`'s result. A value of None removes the field it replaces."""
        return {}

    def kernels(self, blur: Mapping) -> tuple[np.ndarray, ...]:
        """The kernels a record's fields ``blur`` name, in the order :meth:`render` takes."""
        raise NotImplementedError

    def uniform_kernel(self, blur: Mapping) -> np.ndarray:
        """The kernel that blurs a uniform image everywhere: the first of :meth:`kernels`."""
        return self.kernels(blur)[0]

    def render(self, scene: Scene, kernels: tuple[np.ndarray, ...]) -> Rendering:
        """The image and its truth: deterministic in ``scene`` and ``kernels``."""
        raise NotImplementedError


_REGISTRY: dict[str, BlurModel] = {}


def register(cls: type[BlurModel]) -> type[BlurModel]:
    """Class decorator: add a model to the registry (an instance; models hold no state).

    Refuses a name that is not lower-case letters, that is a prefix of another model's name
    (image names would not say which model made them), and a name or spawn index already
    taken."""
    name, index = cls.name, cls.spawn_index
    if not name.isascii() or not name.isalpha() or not name.islower():
        raise ValueError(f"blur model name must be lower-case letters, got {name!r}")
    for other in _REGISTRY.values():
        if name == other.name or name.startswith(other.name) or other.name.startswith(name):
            raise ValueError(f"blur model name {name!r} clashes with {other.name!r}")
        if index == other.spawn_index:
            raise ValueError(f"blur model {name!r} takes spawn index {index} of {other.name!r}")
    if cls.objects not in (1, 2):  # a record holds an object and at most a second (fg2)
        raise ValueError(f"blur model {name!r}: objects must be 1 or 2, got {cls.objects}")
    if cls.blur_type not in ("motion", "defocus", None):
        raise ValueError(f"blur model {name!r}: blur_type must be motion, defocus or None")
    _REGISTRY[name] = cls()
    return cls
