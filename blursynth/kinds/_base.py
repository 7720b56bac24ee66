"""The entry of a dataset kind (:class:`DatasetKind`) and its registry."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FieldSpecs = dict[str, tuple[np.dtype, tuple[int, ...]]]


@dataclass(frozen=True)
class DatasetKind:
    """One dataset kind.

    Attributes
    ----------
    name : the manifest's ``kind`` and the command that builds it.
    size_param : the builder parameter that holds a row's side (``patch_size``).
    formats : the formats it is written in (the first is the default).
    fields : ``fields(size, fmt)``: dtype and per-row shape of every field on disk, keyed by
        the API name, in the order they are written.
    batch_fields : the (input, label) fields a trainer reads.
    builder, card, preview, summary : ``"module:function"`` names, resolved by
        :meth:`resolve`: the builder (``(params, out, jobs=, quiet=, backend=, force=) ->
        report``), the dataset card's body (``(manifest) -> str``), the preview sheet
        (``(folder, out_png) -> Path``) and the counts ``info`` prints (``(counts) ->
        str``).
    """

    name: str
    size_param: str
    formats: tuple[str, ...]
    fields: Callable[[int, str], FieldSpecs]
    batch_fields: tuple[str, str]
    builder: str
    card: str
    preview: str
    summary: str

    def resolve(self, what: str) -> Callable:
        """The function named by ``builder``, ``card``, ``preview`` or ``summary``."""
        module, _, name = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), name)

    def row_bytes(self, size: int, fields=None) -> int:
        """Bytes of one row of ``fields`` (default: the batch fields) in the hdf5 format."""
        specs = self.fields(size, self.formats[0])
        return sum(
            specs[f][0].itemsize * int(np.prod(specs[f][1])) for f in fields or self.batch_fields
        )


_KINDS: dict[str, DatasetKind] = {}


def register_kind(kind: DatasetKind) -> DatasetKind:
    """Add a kind to the registry (a name may be registered once)."""
    if kind.name in _KINDS:
        raise ValueError(f"dataset kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def rows_summary(counts) -> str:
    """``info``'s counts of a kind with no table of its own: one line per counts row."""
    return "\n".join(", ".join(f"{k} {v}" for k, v in row.items()) for row in counts)
