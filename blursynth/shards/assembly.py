"""Shards assembled in the workers: each shard task cuts its own rows, writes, hashes.

A split's rows are shuffled, so one image's rows land all over the split. Sending them to
one writer pickles every byte; writing them through per-image files writes every byte
twice. Instead, a build is three steps, each in the workers:

1. **Scan** (the builders): each image is decoded once and kept, planar, in a cache
   (:mod:`blursynth.decoded`).
2. **Draw** (the builders): each image's rows are drawn as *recipes* -- scalar fields only
   (a patch's centre, label and provenance; a tile's origin), a few bytes a row -- and come
   back to the main process, which gives every row its final position
   (:meth:`SplitAssembly.take`).
3. **Assemble** (:func:`assemble_shard`): one task per shard receives its rows' scalars,
   grouped by source image, and asks the builder's :class:`RowCutter` to cut each image's
   array fields (patches; tile pixels and label maps) from the cache straight into their
   places in the shard's buffers; it writes the shard under a temporary name, renames it
   when whole and hashes it.

Every byte of a shard is written once, by the task that owns the shard, sequentially; no
two processes write one file. Memory follows one shard per worker plus under 20 bytes a row
in the main process. Which worker made which shard never changes a byte, so neither does
``--jobs`` or the backend. This layer reads no images itself: the cutter is the builder's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from blursynth.imageio import write_text
from blursynth.shards.format import disk_field_name, sha256_file
from blursynth.shards.writer import (
    ShardRecord,
    ShardWriter,
    create_shard_file,
    disk_values,
    sidecar_path,
)

WRITE_BLOCK_ROWS = 8192  # rows converted and written at a time (bounds caffe's float copy)


class RowCutter(Protocol):
    """A builder's maker of array fields (e.g. ``patches``) from rows' scalar fields."""

    dtypes: dict[str, np.dtype]
    """The array fields it cuts, each with the dtype it cuts them in (caffe's float32
    ``patches`` are cut as uint8 and converted as they are written)."""

    def __call__(
        self,
        key: int,
        scalars: dict[str, np.ndarray],
        out: dict[str, np.ndarray],
        dest: np.ndarray,
    ) -> None:
        """Cut source ``key``'s rows, whose scalar fields are ``scalars`` (row-aligned), into
        ``out[name][dest]`` for each of its fields (no intermediate copy of the rows)."""


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to assemble and write one shard (picklable)."""

    tmp: str
    final: str
    fmt: str
    specs: dict
    attrs: dict
    rows: int
    groups: tuple[tuple[int, np.ndarray], ...]  # (source key, rows of the shard it makes)
    scalars: dict[str, np.ndarray]  # the shard's scalar fields, in row order
    cutter: RowCutter
    record_digest: bool


_BUFFERS: dict[tuple, np.ndarray] = {}
"""This process's row buffers by (field, row shape, dtype), reused from shard to shard."""


def shard_buffer(name: str, rows: int, shape: tuple, dtype) -> np.ndarray:
    """A buffer of ``rows`` rows for one field of a shard, reused by the next shard this
    process assembles (its rows are all overwritten: :func:`assemble_shard` checks).

    A fresh array costs a page fault per 4 KiB at its first touch. On the project's VMs that
    was 1.5 ms per 256-px tile, against 0.02 ms to copy the tile into a buffer already
    touched: most of the time of cutting a shard (docs/benchmarks.md).
    """
    key = (name, tuple(shape), np.dtype(dtype).str)
    buffer = _BUFFERS.get(key)
    if buffer is None or len(buffer) < rows:
        _BUFFERS.pop(key, None)  # the smaller one goes before the larger one comes
        buffer = _BUFFERS[key] = np.empty((rows, *shape), dtype)
    return buffer[:rows]


def release_buffers() -> None:
    """Drop this process's shard buffers (the main process, after a build in it)."""
    _BUFFERS.clear()


def assemble_shard(job: ShardJob) -> ShardRecord:
    """Cut the shard's rows (``job.cutter``), write the shard atomically, hash it."""
    from blursynth.workers import die_with_parent

    die_with_parent()
    buffers = {
        name: shard_buffer(name, job.rows, shape, job.cutter.dtypes[name])
        for name, (_, shape) in job.specs.items()
        if shape
    }
    made = np.zeros(job.rows, dtype=bool)
    for key, rows in job.groups:
        job.cutter(key, {name: v[rows] for name, v in job.scalars.items()}, buffers, rows)
        made[rows] = True
    if not made.all():
        raise RuntimeError(f"{job.final}: row {int(np.argmin(made))} was never made")
    values = {**buffers, **job.scalars}
    with create_shard_file(Path(job.tmp), job.specs, job.fmt, job.attrs) as f:
        for name, (dtype, _) in job.specs.items():
            dset = f[disk_field_name(name, job.fmt)]
            for a in range(0, job.rows, WRITE_BLOCK_ROWS):
                block = values[name][a : a + WRITE_BLOCK_ROWS]
                dset[a : a + len(block)] = disk_values(name, block, dtype)
    os.replace(job.tmp, job.final)
    digest = sha256_file(job.final)
    if job.record_digest:
        # the digest of the bytes as written: a rerun reuses the shard only if it still
        # hashes to this (a corrupted shard is rebuilt, never blessed)
        write_text(sidecar_path(Path(job.final)), digest + "\n")
    return ShardRecord(Path(job.final).name, job.rows, digest)


class SplitAssembly:
    """The main process's side of one split: rows' scalars by final position, shard tasks.

    Parameters
    ----------
    layout : ShardWriter
        Names, row counts and attributes of the split's shards (it writes nothing itself).

    Examples
    --------
    >>> layout = ShardWriter(out, "val", n, 100_000, specs, "hdf5", attrs)  # doctest: +SKIP
    >>> split = SplitAssembly(layout)                                     # doctest: +SKIP
    >>> split.take(key, positions, scalars)   # each source's drawn rows  # doctest: +SKIP
    >>> jobs = split.shard_jobs([0, 1], cutter)  # then assemble_shard(job) in the workers
    """

    def __init__(self, layout: ShardWriter):
        self.layout = layout
        self.scalars = {
            k: np.zeros(layout.total_rows, dtype=dtype)
            for k, (dtype, shape) in layout.specs.items()
            if not shape
        }
        self.keys = np.full(layout.total_rows, -1, dtype=np.int64)  # source key of each row

    def take(self, key: int, positions: np.ndarray, scalars: dict[str, np.ndarray]) -> None:
        """Keep the scalar fields of source ``key``'s rows, at their final ``positions``."""
        for name, values in self.scalars.items():
            values[positions] = scalars[name]
        self.keys[positions] = key

    def shard_jobs(self, todo: list[int], cutter: RowCutter) -> list[ShardJob]:
        """One :class:`ShardJob` per shard index in ``todo``."""
        layout = self.layout
        jobs = []
        for k in todo:
            a = k * layout.rows_per_shard
            b = a + layout.shard_rows(k)
            keys = self.keys[a:b]
            if (keys < 0).any():
                raise RuntimeError(
                    f"row {a + int(np.argmax(keys < 0))} of {layout.split} not drawn"
                )
            order = np.argsort(keys, kind="stable")  # by source, then by position
            starts = np.flatnonzero(np.diff(keys[order], prepend=-1))
            ends = [*starts[1:], len(order)] if len(order) else []
            groups = tuple(
                (int(keys[order[s]]), order[s:e]) for s, e in zip(starts, ends, strict=True)
            )
            final = layout.shard_path(k)
            jobs.append(
                ShardJob(
                    tmp=str(final.with_name(f"{final.name}.tmp-{os.getpid()}")),
                    final=str(final),
                    fmt=layout.fmt,
                    specs=layout.specs,
                    attrs=layout.shard_attrs(k),
                    rows=b - a,
                    groups=groups,
                    scalars={name: v[a:b] for name, v in self.scalars.items()},
                    cutter=cutter,
                    record_digest=layout.record_digests,
                )
            )
        return jobs

    def remove_temporaries(self) -> None:
        """Shard temporaries that a failed or interrupted task left."""
        pattern = f"{self.layout.split}-*.h5.tmp-{os.getpid()}"
        for tmp in self.layout.directory.glob(pattern):
            tmp.unlink(missing_ok=True)
