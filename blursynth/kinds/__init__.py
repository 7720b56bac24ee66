"""Dataset kinds: what a row of a dataset is, one module each, registered by name.

A kind's entry (:class:`DatasetKind`) says what readers need without its builder: the
parameter that holds a row's side, the formats it is written in, its fields on disk, the
(input, label) fields a trainer reads; and, as ``module:function`` names resolved when
used, its builder, its dataset-card body, its preview sheet and its counts in ``info``.
Every module of this package that does not start with ``_`` registers one, so adding a
kind is its entry here plus its builder (``docs/architecture.md``, "How to add a dataset
kind"). This module imports nothing of ours but :mod:`blursynth.errors`: the schema, the
shard layer and the trainer all ask it.
"""

from __future__ import annotations

import importlib
import pkgutil

from blursynth.kinds._base import _KINDS, DatasetKind, register_kind

__all__ = ["DatasetKind", "get_kind", "kind_names", "register_kind"]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def kind_names() -> tuple[str, ...]:
    """Every registered kind, in registration order (``patches``, ``tiles``, ...)."""
    return tuple(_KINDS)


def get_kind(name: str, path=None) -> DatasetKind:
    """The registered kind of that name (a :class:`~blursynth.errors.BlursynthError` naming
    the kinds this blursynth reads, and ``path``, if there is none)."""
    from blursynth.errors import BlursynthError

    try:
        return _KINDS[name]
    except KeyError:
        raise BlursynthError(
            f"dataset kind {name!r} is unknown to this blursynth (it reads "
            f"{', '.join(_KINDS)}); upgrade the package",
            path,
        ) from None
