"""The blur models, one module each, registered in spawn-key order.

Each module of this package that does not start with ``_`` defines a
:class:`~blursynth.blurmodels._base.BlurModel` and registers it with :func:`register` (as
timm's ``register_model`` sits next to each entrypoint). Importing the package imports them
all, so adding a model is adding a file. See ``docs/architecture.md``, "How to add a blur
model".
"""

from __future__ import annotations

import importlib
import pkgutil

from blursynth.blurmodels._base import _REGISTRY, BlurModel, Rendering, Scene, register

__all__ = ["BlurModel", "Rendering", "Scene", "get", "names", "register"]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def names() -> tuple[str, ...]:
    """Every registered model's name, in spawn-key order (0 motion, 1 defocus, 2 mixed, 3 pan,
    then whatever comes next)."""
    return tuple(sorted(_REGISTRY, key=lambda name: _REGISTRY[name].spawn_index))


def get(name: str) -> BlurModel:
    """The registered model of that name (ValueError, naming the choices, if there is none)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"blur model must be one of {names()}, got {name!r}") from None
