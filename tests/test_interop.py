"""Shards load unchanged with Hugging Face ``datasets``; ``--format caffe`` suits Caffe/Mocha."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from _trees import make_tree

from blursynth.patches import build_patch_dataset
from blursynth.schema import PatchParams
from blursynth.shards import open_dataset, verify_dataset


def _build(tmp_path, fmt):
    root = make_tree(tmp_path / "src", motion=4, defocus=4)
    params = PatchParams(
        source="shi",
        root=str(root),
        train_patches=500,
        val_patches=100,
        eval_images=2,
        patch_size=9,
        rows_per_shard=200,
        format=fmt,
    )
    build_patch_dataset(params, tmp_path / "ds")
    return tmp_path / "ds"


def test_hugging_face_hdf5_loader_reads_the_shards(tmp_path):
    datasets = pytest.importorskip("datasets")
    out = _build(tmp_path, "hdf5")
    with open_dataset(out) as ds:
        files = {
            "train": [str(p) for p in ds["train"].shards],
            "validation": [str(p) for p in ds["val"].shards],
        }
        hf = datasets.load_dataset("hdf5", data_files=files, cache_dir=str(tmp_path / "cache"))
        assert hf["train"].num_rows == 500 and hf["validation"].num_rows == 100
        assert hf["train"].features["patches"].shape == (3, 9, 9)
        ours = ds["train"].read(0, 500)
        theirs = hf["train"].with_format("numpy")[:]
        for key in ("patches", "label", "category", "center_y"):
            assert np.array_equal(theirs[key], ours[key]), key


def test_caffe_layout(tmp_path):
    out = _build(tmp_path, "caffe")
    lines = (out / "train.txt").read_text().splitlines()
    assert lines == [  # names only: no path of the builder's machine
        "train-00000-of-00003.h5",
        "train-00001-of-00003.h5",
        "train-00002-of-00003.h5",
    ]
    assert (out / "val.txt").read_text() == "val-00000-of-00001.h5\n"
    sums = (out / "SHA256SUMS").read_text()
    assert "  train.txt\n" in sums and "  val.txt\n" in sums
    with h5py.File(out / lines[0], "r") as f:
        data, label = f["data"], f["label"]
        assert data.dtype == np.float32 and data.shape == (200, 3, 9, 9)
        assert label.dtype == np.float32 and label.shape == (200,)
        for d in (data, label):  # Caffe's HDF5 layer reads plain contiguous datasets
            assert d.chunks is None and d.compression is None
        assert 0.0 <= data[()].min() and data[()].max() <= 1.0
        assert set(np.unique(label[()])) <= {0.0, 1.0}
    with verify_dataset(out) as ds:
        rows = ds["train"].read(0, 10, fields=("patches", "label"))
        assert rows["patches"].dtype == np.float32
