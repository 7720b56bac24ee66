"""Batches from shards: shapes, dtypes, coverage, and order as a function of (seed, iteration)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _trees import make_patch_dataset

from blursynth.shards import open_dataset
from blursynth_train.data import (
    ResidentBatches,
    StreamedBatches,
    augment,
    eval_batches,
    load_split,
)

P = 31


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_patch_dataset(
        tmp_path_factory.mktemp("shards") / "ds", n_train=200, n_val=40, rows_per_shard=70
    )


def _rows_seen(batches, iterations: int, split) -> list[int]:
    """The ``image_index`` of every row the first ``iterations`` batches hold."""
    all_patches = torch.from_numpy(split.read(0, len(split), fields=("patches",))["patches"])
    key = {bytes(p.numpy().tobytes()): i for i, p in enumerate(all_patches)}
    seen = []
    for x, y in list(_take(batches, iterations)):
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, P, P)
        assert y.dtype == torch.int64 and y.shape == (len(x),)
        seen += [key[bytes(p.numpy().tobytes())] for p in x]
    return seen


def _take(it, n):
    for _, item in zip(range(n), it, strict=False):
        yield item


@pytest.mark.parametrize("kind", ["resident", "streamed"])
def test_epoch_covers_split_once(shards, kind):
    split = open_dataset(shards)["train"]  # 200 rows, batch 8: 25 batches an epoch
    if kind == "resident":
        batches = ResidentBatches(*load_split(split, torch.device("cpu")), 8, seed=1)
    else:
        batches = StreamedBatches(
            split, 8, seed=1, device=torch.device("cpu"), workers=0, blocks_per_read=3
        )
    assert batches.batches_per_epoch == 25
    seen = _rows_seen(batches.iterate(0), 25, split)
    assert sorted(seen) == list(range(200))
    assert seen != list(range(200))  # shuffled
    second = _rows_seen(batches.iterate(25), 25, split)
    assert sorted(second) == list(range(200)) and second != seen  # new order each epoch


@pytest.mark.parametrize("kind", ["resident", "streamed"])
def test_order_depends_only_on_seed_and_iteration(shards, kind):
    split = open_dataset(shards)["train"]
    dev = torch.device("cpu")

    def source(seed):
        if kind == "resident":
            return ResidentBatches(*load_split(split, dev), 16, seed=seed)
        return StreamedBatches(split, 16, seed=seed, device=dev, workers=0, blocks_per_read=2)

    full = [x for x, _ in _take(source(3).iterate(0), 20)]
    tail = [x for x, _ in _take(source(3).iterate(7), 13)]
    assert all(torch.equal(a, b) for a, b in zip(full[7:], tail, strict=True))
    other = [x for x, _ in _take(source(4).iterate(0), 3)]
    assert not torch.equal(full[0], other[0])


def test_streamed_with_workers_matches_main_process(shards):
    split = open_dataset(shards)["train"]
    dev = torch.device("cpu")
    main = StreamedBatches(split, 8, seed=5, device=dev, workers=0, blocks_per_read=3)
    pool = StreamedBatches(split, 8, seed=5, device=dev, workers=2, blocks_per_read=3)
    a = list(_take(main.iterate(4), 30))
    b = list(_take(pool.iterate(4), 30))
    assert all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


def test_labels_match_rows(shards):
    split = open_dataset(shards)["train"]
    ref = split.read(0, len(split), fields=("patches", "label"))
    lookup = {p.tobytes(): int(lab) for p, lab in zip(ref["patches"], ref["label"], strict=True)}
    batches = StreamedBatches(split, 8, seed=0, device=torch.device("cpu"), workers=0)
    seen = 0
    for x, y in _take(batches.iterate(0), 5):
        assert [lookup[p.numpy().tobytes()] for p in x] == y.tolist()
        seen += len(y)
    assert seen == 5 * 8


def test_eval_batches_in_order(shards):
    split = open_dataset(shards)["val"]
    dev = torch.device("cpu")
    from_split = list(eval_batches(split, 16, dev, rows=33))
    from_tensors = list(eval_batches(load_split(split, dev), 16, dev, rows=33))
    assert [len(y) for _, y in from_split] == [16, 16, 1]
    assert [len(y) for _, y in from_tensors] == [16, 16, 1]
    for (xa, ya), (xb, yb) in zip(from_split, from_tensors, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_augment_keeps_centre_and_content():
    x = torch.randint(0, 256, (64, 3, P, P), dtype=torch.uint8)
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (64,))
    y, same_labels = augment(x, labels)
    assert torch.equal(same_labels, labels)  # a patch's centre pixel, so its label, stays
    assert y.dtype == torch.uint8 and y.shape == x.shape
    c = P // 2
    assert torch.equal(y[..., c, c], x[..., c, c])
    assert torch.equal(y.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    assert not torch.equal(y, x)


def test_batch_larger_than_split_is_an_error(shards):
    split = open_dataset(shards)["val"]
    with pytest.raises(ValueError, match="batch_size"):
        StreamedBatches(split, 64, seed=0, device=torch.device("cpu"))


def test_photometric_changes_tone_and_colour_but_no_edge():
    from blursynth_train.data import PHOTOMETRIC_SPREAD, photometric

    torch.manual_seed(0)
    ramp = torch.linspace(0, 255, P).round().to(torch.uint8)
    grey = ramp.expand(64, 3, P, P).contiguous()  # a horizontal ramp, grey
    y = photometric(grey)
    assert y.dtype == torch.float32 and y.shape == grey.shape
    assert 0 <= float(y.min()) and float(y.max()) <= 255
    # every step is increasing: a ramp stays a ramp (non-decreasing), no edge appears
    assert bool((y[..., 1:] >= y[..., :-1] - 1e-3).all())
    # a grey image stays grey (saturation mixes a pixel with its own luma)
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-3) and torch.allclose(
        y[:, 1], y[:, 2], atol=1e-3
    )
    # rows differ from each other and from the input, within the documented spread
    assert not torch.allclose(y[0], y[1]) and not torch.allclose(y, grey.float())
    mid = y[:, 0, 0, P // 2] / float(ramp[P // 2])
    bound = max(PHOTOMETRIC_SPREAD.values()) ** 3 * 1.3
    assert bool((mid > 1 / bound).all()) and bool((mid < bound).all())
    # the same RNG state gives the same rows
    torch.manual_seed(0)
    assert torch.equal(photometric(grey), y)


def test_photometric_saturation_keeps_luma():
    from blursynth_train import data as data_module

    torch.manual_seed(1)
    x = torch.randint(40, 200, (16, 3, P, P), dtype=torch.uint8)
    spreads = dict(data_module.PHOTOMETRIC_SPREAD)
    try:  # saturation alone (the other factors fixed at 1): luma unchanged where unclipped
        data_module.PHOTOMETRIC_SPREAD.update(gamma=1.0, gain=1.0, contrast=1.0)
        y = data_module.photometric(x)
    finally:
        data_module.PHOTOMETRIC_SPREAD.update(spreads)
    w = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    inside = ((y > 0) & (y < 255)).all(1)
    luma_in, luma_out = (x.float() * w).sum(1), (y * w).sum(1)
    assert torch.allclose(luma_in[inside], luma_out[inside], atol=1e-2)
    assert not torch.allclose(y, x.float())  # colour did change
