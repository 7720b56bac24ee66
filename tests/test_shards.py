"""Shard writer and reader: round trips, byte identity, verification, interrupted runs."""

from __future__ import annotations

import hashlib
import json
import pickle

import h5py
import numpy as np
import pytest
from _trees import make_tree

from blursynth import build, shards
from blursynth.errors import BlursynthError
from blursynth.patches import build_patch_dataset
from blursynth.schema import PatchParams, manifest_base
from blursynth.shards import (
    FIELDS,
    ShardWriter,
    assembly,
    field_specs,
    open_dataset,
    verify_dataset,
)
from blursynth.sources import open_dataset_images


def _params(root, **kw):
    base = {
        "source": "shi",
        "train_patches": 900,
        "val_patches": 200,
        "eval_images": 2,
        "rows_per_shard": 400,
        "patch_size": 9,
    }
    return PatchParams(root=str(root), **{**base, **kw})


def _hashes(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("src"), motion=5, defocus=5)


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "ds"
    build_patch_dataset(_params(tree), out)
    return out


def test_writer_round_trip_across_shards(tmp_path):
    rng = np.random.default_rng(0)
    n, p = 23, 5
    rows = {
        "patches": rng.integers(0, 256, (n, 3, p, p), dtype=np.uint8),
        "label": rng.integers(0, 2, n).astype(np.uint8),
        "blur_type": np.zeros(n, np.uint8),
        "category": np.full(n, 2, np.uint8),
        "image_index": np.arange(n, dtype=np.int32),
        "center_y": rng.integers(0, 99, n).astype(np.int32),
        "center_x": rng.integers(0, 99, n).astype(np.int32),
    }
    with ShardWriter(
        tmp_path, "train", n, 10, field_specs(p, "hdf5"), "hdf5", {"plan_sha256": "x"}
    ) as w:
        for a in range(0, n, 7):  # batches that straddle shard boundaries
            w.write({k: v[a : a + 7] for k, v in rows.items()})
    assert [r.rows for r in w.records] == [10, 10, 3]
    assert sorted(x.name for x in tmp_path.iterdir()) == [
        "train-00000-of-00003.h5",
        "train-00001-of-00003.h5",
        "train-00002-of-00003.h5",
    ]
    manifest = {
        **manifest_base(),
        "plan_sha256": "x",
        "params": {"patch_size": p, "format": "hdf5"},
        "splits": {"train": {"shards": [vars(r) for r in w.records]}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with open_dataset(tmp_path) as ds:
        split = ds["train"]
        assert len(split) == n and ds.splits == ("train",)
        got = split.read(4, 21)
        for k in FIELDS:
            assert got[k].dtype == rows[k].dtype and np.array_equal(got[k], rows[k][4:21])
        assert set(split.read(0, 3, fields=("label",))) == {"label"}
        blocks = list(split.iter_blocks(8, fields=("image_index",)))
        assert [len(b["image_index"]) for b in blocks] == [8, 8, 7]
        assert np.array_equal(np.concatenate([b["image_index"] for b in blocks]), np.arange(n))
        clone = pickle.loads(pickle.dumps(split))  # workers get a handle-free copy
        assert np.array_equal(clone.read(20, 23)["label"], rows["label"][20:])
        clone.close()
        with pytest.raises(IndexError):
            split.read(0, n + 1)
        with pytest.raises(BlursynthError, match="no split 'val'"):
            ds["val"]


def test_shards_hold_patches_of_the_plan_with_provenance_attrs(built):
    with open_dataset(built) as ds:
        assert ds.splits == ("train", "val") and len(ds["train"]) == 900
        assert len(ds.manifest_sha256) == 64
        assert ds.params["patch_size"] == 9 and ds.params["seed"] == 0
        with h5py.File(ds["train"].shards[0], "r") as f:
            assert set(f) == {
                "patches",
                "label",
                "blur_type",
                "category",
                "image_index",
                "center_y",
                "center_x",
            }
            assert f["patches"].shape == (400, 3, 9, 9) and f["patches"].dtype == np.uint8
            assert f["patches"].chunks is None and f["patches"].compression is None
            assert json.loads(f.attrs["params"])["train_patches"] == 900
            images = json.loads(f.attrs["images"])
            assert {im["index"] for im in images} >= set(f["image_index"][()].tolist())
        # rows are shuffled: a contiguous slice mixes images and labels
        first = ds["train"].read(0, 64, fields=("image_index", "label"))
        assert len(np.unique(first["image_index"])) > 3 and 0 < first["label"].mean() < 1


def test_same_seed_same_bytes_whatever_jobs(tree, built, tmp_path):
    build_patch_dataset(_params(tree), tmp_path / "j2", jobs=2)
    assert _hashes(tmp_path / "j2") == _hashes(built)
    build_patch_dataset(_params(tree, seed=1), tmp_path / "s1")
    assert (
        _hashes(tmp_path / "s1")["train-00000-of-00003.h5"]
        != _hashes(built)["train-00000-of-00003.h5"]
    )


def test_verify_names_a_shard_with_a_flipped_byte(tree, tmp_path):
    out = tmp_path / "ds"
    build_patch_dataset(_params(tree), out)
    verify_dataset(out).close()
    shard = out / "train-00001-of-00003.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(BlursynthError, match="train-00001-of-00003.h5: sha256"):
        verify_dataset(out)


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(BlursynthError, match="manifest.json: no manifest"):
        open_dataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(BlursynthError, match="invalid manifest"):
        open_dataset(tmp_path)


def test_interrupted_run_leaves_no_finished_looking_file_and_rerun_completes(
    tree, built, tmp_path, monkeypatch
):
    out = tmp_path / "ds"
    real = assembly.assemble_shard
    calls = []

    def crash_on_second(job):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(build, "assemble_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        build_patch_dataset(_params(tree), out)
    monkeypatch.undo()
    names = sorted(p.name for p in out.iterdir())
    # no temporary, no manifest, no checksums: the finished shard and its recorded digest
    assert names == ["train-00000-of-00003.h5", "train-00000-of-00003.h5.sha256"]
    report = build_patch_dataset(_params(tree), out)
    assert report.reused_shards == 1
    assert _hashes(out) == _hashes(built)


def test_rerun_after_kill_rebuilds_a_deleted_shard_and_ignores_temporaries(tree, built, tmp_path):
    out = tmp_path / "ds"
    build_patch_dataset(_params(tree), out)
    (out / "val-00000-of-00001.h5").unlink()
    (out / "SHA256SUMS").unlink()
    (out / "train-00002-of-00003.h5.tmp-99999").write_bytes(b"half a shard")
    (out / ".buckets-train").mkdir()
    report = build_patch_dataset(_params(tree), out)
    assert report.reused_shards == 3
    assert _hashes(out) == _hashes(built)
    assert not list(out.glob(".buckets-*"))


def test_empty_reads_at_the_end_and_of_an_empty_split(tmp_path):
    """``read(n, n)`` is in range (``start <= stop <= len``): no rows, not an IndexError; an
    empty split (``--train-patches 0``) reads as zero rows too."""
    p = 5
    records = {}
    for name, n in (("train", 23), ("val", 0)):
        rows = {
            "patches": np.zeros((n, 3, p, p), np.uint8),
            "label": np.zeros(n, np.uint8),
            **{k: np.zeros(n, v) for k, v in shards.PROVENANCE_DTYPES.items()},
        }
        with ShardWriter(
            tmp_path, name, n, 10, field_specs(p, "hdf5"), "hdf5", {"plan_sha256": "x"}
        ) as w:
            if n:
                w.write(rows)
        records[name] = {"shards": [vars(r) for r in w.records]}
    manifest = {
        **manifest_base(),
        "plan_sha256": "x",
        "params": {"patch_size": p, "format": "hdf5"},
        "splits": records,
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with open_dataset(tmp_path) as ds:
        for split, at in (("train", 23), ("train", 20), ("train", 10), ("val", 0)):
            got = ds[split].read(at, at)
            assert got["patches"].shape == (0, 3, p, p) and got["label"].dtype == np.uint8
            assert set(got) == set(FIELDS)
        assert ds["train"].read(20, 23, fields=("label",))["label"].shape == (3,)
        assert list(ds["val"].iter_blocks(4)) == []


def test_verify_names_the_first_impossible_row(tree, tmp_path):
    out = tmp_path / "ds"
    build_patch_dataset(_params(tree), out)
    shard = out / "val-00000-of-00001.h5"
    with h5py.File(shard, "r+") as f:
        category = f["category"][()]
        row = int(np.flatnonzero(category == 0)[0])  # a sharp window ...
        f["label"][row] = 1  # ... cannot have a blurred centre
    with pytest.raises(BlursynthError, match=rf"1 row\(s\) .* \(first at row {row}\)"):
        verify_dataset(out)


def test_malformed_manifest_and_eval_list_are_one_line_errors(built, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)
    manifest = json.loads((out / "manifest.json").read_text())
    bad = json.loads(json.dumps(manifest))
    del bad["splits"]["train"]["shards"][0]["rows"]
    (out / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(BlursynthError, match="manifest.json: invalid manifest"):
        open_dataset(out)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "eval.json").write_text(json.dumps({"source": "shi", "items": []}))  # no root
    with pytest.raises(BlursynthError, match="eval.json: invalid eval list"):
        open_dataset_images(out)


def test_mixed_split_holds_every_row_once_in_proportion(tmp_path):
    from _trees import make_patch_dataset

    from blursynth.shards import MixedSplit
    from blursynth_train.data import training_data_sha256

    a = open_dataset(
        make_patch_dataset(tmp_path / "a", n_train=300, n_val=8, seed=1, rows_per_shard=70)
    )
    b = open_dataset(
        make_patch_dataset(tmp_path / "b", n_train=100, n_val=8, seed=2, rows_per_shard=70)
    )
    mix = MixedSplit([a["train"], b["train"]], stripe_rows=16)
    assert len(mix) == 400
    whole = mix.read(0, 400)
    parts = [s.read(0, len(s)) for s in (a["train"], b["train"])]
    as_bytes = lambda rows: sorted(p.tobytes() for p in rows["patches"])  # noqa: E731
    assert as_bytes(whole) == sorted(as_bytes(parts[0]) + as_bytes(parts[1]))
    # reads that cross stripe (and shard) boundaries agree with the whole read
    for start, stop in ((0, 0), (5, 37), (15, 17), (250, 400), (399, 400)):
        got = mix.read(start, stop)
        assert np.array_equal(got["patches"], whole["patches"][start:stop])
        assert np.array_equal(got["label"], whole["label"][start:stop])
    # every quarter of the mix holds the two splits 3:1, as their sizes
    from_b = {p.tobytes() for p in parts[1]["patches"]}
    for q in range(4):
        rows = whole["patches"][q * 100 : (q + 1) * 100]
        assert 15 <= sum(p.tobytes() in from_b for p in rows) <= 35
    with pytest.raises(IndexError, match="out of range"):
        mix.read(0, 401)
    assert training_data_sha256([a.manifest_sha256]) == a.manifest_sha256
    assert training_data_sha256([a.manifest_sha256, b.manifest_sha256]) != training_data_sha256(
        [b.manifest_sha256, a.manifest_sha256]
    )


class _Cutter:
    """The RowCutter of the assembly tests: a patch filled with its source key and row value."""

    dtypes = {"patches": np.dtype(np.uint8)}

    def __call__(self, key, rows, out, dest):
        out["patches"][dest] = (key * 16 + rows["center_y"] % 16).astype(np.uint8)[
            :, None, None, None
        ]


_cutter = _Cutter()


def _cut_one(key, rows):
    """What _cutter makes of one source's rows, as an array of patches."""
    patches = np.empty((len(rows["label"]), 3, 3, 3), np.uint8)
    _cutter(key, rows, {"patches": patches}, np.arange(len(patches)))
    return patches


@pytest.mark.parametrize("fmt", ["hdf5", "caffe"])
def test_assembled_shards_hold_every_row_at_its_planned_position(tmp_path, fmt):
    """Rows drawn by several sources land where their positions say, across shards; the
    bytes equal those of the sequential ShardWriter given the rows in final order."""
    n, per_shard = 50, 20
    rng = np.random.default_rng(0)
    positions = rng.permutation(n)
    keys = np.repeat(np.arange(5), 10)  # 5 sources, 10 rows each, in source order
    scalars = {
        "label": rng.integers(0, 2, n).astype(np.uint8),
        "blur_type": np.zeros(n, np.uint8),
        "category": rng.integers(0, 3, n).astype(np.uint8),
        "image_index": keys.astype(np.int32),
        "center_y": rng.integers(0, 100, n).astype(np.int32),
        "center_x": np.arange(n, dtype=np.int32),
    }
    placed = tmp_path / "placed"
    placed.mkdir()
    split = assembly.SplitAssembly(
        ShardWriter(placed, "train", n, per_shard, field_specs(3, fmt), fmt, {"a": 1})
    )
    for key in range(5):
        rows = keys == key
        split.take(key, positions[rows], {k: v[rows] for k, v in scalars.items()})
    records = [assembly.assemble_shard(j) for j in split.shard_jobs([0, 1, 2], _cutter)]
    assert [r.rows for r in records] == [20, 20, 10]

    final = np.argsort(positions)  # the row drawn i-th lands at positions[i]
    rows = {k: v[final] for k, v in scalars.items()}
    rows["patches"] = np.concatenate(  # what _cutter makes, row by row, in final order
        [_cut_one(int(keys[i]), {k: v[i : i + 1] for k, v in scalars.items()}) for i in final]
    )
    ref = tmp_path / "ref"
    ref.mkdir()
    with ShardWriter(ref, "train", n, per_shard, field_specs(3, fmt), fmt, {"a": 1}) as w:
        w.write(rows)
    assert [r.sha256 for r in records] == [r.sha256 for r in w.records]
    assert not list(placed.glob("*.tmp-*"))


def test_an_undrawn_row_stops_the_assembly(tmp_path):
    split = assembly.SplitAssembly(
        ShardWriter(tmp_path, "val", 4, 10, field_specs(3, "hdf5"), "hdf5", {})
    )
    zeros = {k: np.zeros(3, np.int32) for k in ("label", "blur_type", "category")}
    zeros.update({k: np.zeros(3, np.int32) for k in ("image_index", "center_y", "center_x")})
    split.take(0, np.array([0, 1, 3]), zeros)
    with pytest.raises(RuntimeError, match="row 2 of val not drawn"):
        split.shard_jobs([0], _cutter)


def test_a_process_reuses_its_shard_buffers_and_a_build_releases_them():
    """The next shard of a process is cut into the buffer of the last (fresh memory costs a
    page fault per 4 KiB): the same memory for as many rows or fewer, a new buffer for more,
    separate buffers per field; release_buffers drops them."""
    from blursynth.shards.assembly import _BUFFERS, release_buffers, shard_buffer

    release_buffers()
    a = shard_buffer("image", 10, (3, 4, 4), np.uint8)
    b = shard_buffer("image", 7, (3, 4, 4), np.uint8)
    assert b.shape == (7, 3, 4, 4) and np.shares_memory(a, b)
    assert not np.shares_memory(a, shard_buffer("label", 10, (4, 4), np.uint8))
    c = shard_buffer("image", 12, (3, 4, 4), np.uint8)
    assert c.shape == (12, 3, 4, 4) and not np.shares_memory(a, c)
    assert len(_BUFFERS) == 2
    release_buffers()
    assert not _BUFFERS


def test_shards_cut_into_reused_buffers_are_those_of_fresh_ones(tree, tmp_path):
    """A build in one process (every shard after the first reuses its buffers) writes the
    bytes of a build whose every shard has fresh buffers."""
    import blursynth.shards.assembly as assembly

    reused, fresh = tmp_path / "reused", tmp_path / "fresh"
    params = _params(tree, rows_per_shard=150)
    build_patch_dataset(params, reused)
    real = assembly.shard_buffer
    try:
        assembly.shard_buffer = lambda name, rows, shape, dtype: np.empty((rows, *shape), dtype)
        build_patch_dataset(params, fresh)
    finally:
        assembly.shard_buffer = real
    shards = sorted(p.name for p in reused.glob("*.h5"))
    assert len(shards) > 2
    for name in shards:
        assert (reused / name).read_bytes() == (fresh / name).read_bytes()
