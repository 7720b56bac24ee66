"""The dataset-kind registry: what readers ask of a kind, and a kind added by an entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blursynth import kinds
from blursynth.errors import BlursynthError
from blursynth.kinds import DatasetKind, get_kind, kind_names, register_kind
from blursynth.kinds._base import _KINDS
from blursynth.schema import Manifest
from blursynth.shards import field_specs


def test_the_kinds_and_what_they_say():
    assert kind_names()[:2] == ("patches", "tiles")
    assert get_kind("tiles").batch_fields == ("image", "label")
    assert get_kind("patches").row_bytes(31) == 3 * 31 * 31 + 1
    assert get_kind("tiles").row_bytes(8) == 4 * 8 * 8
    assert field_specs(5, "caffe", "patches")["patches"][0] == np.float32
    with pytest.raises(BlursynthError, match="tiles datasets are written as hdf5, not 'caffe'"):
        field_specs(5, "caffe", "tiles")
    for name in kind_names():  # every named function exists
        for what in ("builder", "card", "preview", "summary"):
            assert callable(get_kind(name).resolve(what)), (name, what)


def test_an_unknown_kind_is_named_with_the_known_ones(tmp_path):
    raw = {"schema_version": 1, "splits": {}, "params": {}, "kind": "voxels"}
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BlursynthError, match="'voxels' is unknown .* reads patches, tiles"):
        Manifest.read(tmp_path / "manifest.json")


def test_a_kind_added_by_an_entry_is_read(monkeypatch, tmp_path):
    """A new kind's manifest reads, its row side comes from its own parameter and its fields
    from its own specs, with no other change."""
    monkeypatch.setattr(kinds._base, "_KINDS", dict(_KINDS))
    monkeypatch.setattr(kinds, "_KINDS", kinds._base._KINDS)

    def fields(size, fmt):
        return {"column": (np.dtype(np.uint8), (size,)), "label": (np.dtype(np.uint8), ())}

    register_kind(
        DatasetKind(
            "columns", "column_height", ("hdf5",), fields, ("column", "label"), "", "", "", ""
        )
    )
    with pytest.raises(ValueError, match="registered twice"):
        register_kind(get_kind("columns"))
    raw = {"schema_version": 1, "splits": {}, "params": {"column_height": 7}, "kind": "columns"}
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    manifest, _ = Manifest.read(tmp_path / "manifest.json")
    assert manifest.row_size == 7
    assert field_specs(manifest.row_size, "hdf5", "columns")["column"][1] == (7,)
