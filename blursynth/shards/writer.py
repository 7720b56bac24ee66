"""Shard writer: one split's rows, in order, into fixed-size shards written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.imageio import write_text
from blursynth.schema import CHECKSUMS
from blursynth.shards.format import (
    attr_value,
    disk_field_name,
    sha256_file,
    shard_name,
)


@dataclass
class ShardRecord:
    """One finished shard: file name, rows, sha256."""

    file: str
    rows: int
    sha256: str


class ShardWriter:
    """Write one split's rows, in order, into fixed-size shards.

    Rows go to ``DIR/<split>-#####-of-#####.h5``; each shard is written under a temporary
    name and renamed when its last row is in, so an interrupted run never leaves a file that
    looks finished. Datasets are preallocated (contiguous), the file carries ``attrs`` as
    root attributes plus its own index and row range, and no timestamps.

    Parameters
    ----------
    directory : path
    split : str
    total_rows, rows_per_shard : int
    specs : dict
        dtype and per-row shape of every field, in the order written
        (:func:`~blursynth.shards.format.field_specs` of the dataset's kind).
    fmt : {"hdf5", "caffe"}
        ``caffe`` stores ``data`` float32 in [0, 1] and float32 ``label``.
    record_digests : bool
        Write each finished shard's sha256 beside it (:func:`sidecar_path`), so that a
        resumed build can tell an intact shard from a damaged one.
    attrs : dict
        Root attributes for every shard (str, int, float; dicts/lists are stored as JSON).

    Examples
    --------
    >>> specs = field_specs(31, "hdf5", "patches")                          # doctest: +SKIP
    >>> with ShardWriter(out, "train", n, 100_000, specs, "hdf5", attrs) as w:  # doctest: +SKIP
    ...     for batch in batches:          # dicts of row-aligned arrays, in final order
    ...         w.write(batch)
    >>> w.records                                                           # doctest: +SKIP
    """

    def __init__(
        self,
        directory,
        split: str,
        total_rows: int,
        rows_per_shard: int,
        specs: dict,
        fmt: str,
        attrs: dict,
        record_digests: bool = False,
    ):
        if rows_per_shard < 1:
            raise BlursynthError(f"rows per shard must be >= 1, got {rows_per_shard}")
        self.directory = Path(directory)
        self.split = split
        self.total_rows = int(total_rows)
        self.rows_per_shard = int(rows_per_shard)
        self.fmt = fmt
        self.specs = dict(specs)
        self.record_digests = record_digests
        self.attrs = dict(attrs)
        self.num_shards = max(1, -(-self.total_rows // self.rows_per_shard))
        self.records: list[ShardRecord] = []
        self._file: h5py.File | None = None
        self._tmp: Path | None = None
        self._row = 0  # next row of the split to write
        self._in_shard = 0

    def shard_path(self, index: int) -> Path:
        return self.directory / shard_name(self.split, index, self.num_shards)

    def shard_rows(self, index: int) -> int:
        start = index * self.rows_per_shard
        return max(0, min(self.rows_per_shard, self.total_rows - start))

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def _open_shard(self) -> None:
        index = len(self.records)
        path = self.shard_path(index)
        self._tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        self._file = create_shard_file(self._tmp, self.specs, self.fmt, self.shard_attrs(index))
        self._in_shard = 0

    def shard_attrs(self, index: int) -> dict:
        """Root attributes of shard ``index``: the writer's, its place in the split, format."""
        return {  # the writer's attributes sorted, then the shard's: the order bytes depend on
            **dict(sorted(self.attrs.items())),
            "split": self.split,
            "shard_index": index,
            "num_shards": self.num_shards,
            "row_start": index * self.rows_per_shard,
            "rows": self.shard_rows(index),
            "format": self.fmt,
        }

    def write(self, batch: dict[str, np.ndarray]) -> None:
        """Append rows (a dict with every field, equal first dimensions) in final order."""
        n = len(batch["label"])
        done = 0
        while done < n:
            if self._row >= self.total_rows:
                raise ValueError(f"more rows than planned ({self.total_rows})")
            if self._file is None:
                self._open_shard()
            rows = self.shard_rows(len(self.records))
            take = min(n - done, rows - self._in_shard)
            for name, (dtype, _) in self.specs.items():
                values = disk_values(name, batch[name][done : done + take], dtype)
                self._file[disk_field_name(name, self.fmt)][
                    self._in_shard : self._in_shard + take
                ] = values
            self._in_shard += take
            self._row += take
            done += take
            if self._in_shard == rows:
                self._finish_shard()

    def skip_shard(self, record: ShardRecord) -> None:
        """Account for a shard that is already complete on disk (resuming a run)."""
        if self._file is not None or self._in_shard:
            raise ValueError("skip_shard only between shards")
        self.records.append(record)
        self._row += record.rows

    def _finish_shard(self) -> None:
        self._file.close()
        self._file = None
        path = self.shard_path(len(self.records))
        os.replace(self._tmp, path)
        self._tmp = None
        self._in_shard = 0
        digest = sha256_file(path)
        if self.record_digests:
            # the digest of the bytes as written: a rerun reuses the shard only if it still
            # hashes to this (a corrupted shard is rebuilt, never blessed)
            write_text(sidecar_path(path), digest + "\n")
        self.records.append(ShardRecord(path.name, self.shard_rows(len(self.records)), digest))

    def close(self) -> None:
        """Check every planned row was written (an empty split still gets one empty shard)."""
        if self.total_rows == 0 and not self.records:
            self._open_shard()
            self._finish_shard()
        if self._row != self.total_rows:
            self._abort()
            raise ValueError(f"{self.split}: wrote {self._row} of {self.total_rows} rows")

    def _abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
        self._tmp = None


def create_shard_file(path: Path, specs: dict, fmt: str, attrs: dict):
    """Create an open shard file at ``path`` with every field's dataset and ``attrs``.

    Datasets are contiguous, uncompressed, ``(rows, *shape)`` with ``rows = attrs["rows"]``.
    libver="earliest" + track_times=False: no timestamps, the same bytes on every run.
    """
    f = h5py.File(path, "w", libver="earliest", track_order=False)
    for name, (dtype, shape) in specs.items():
        f.create_dataset(
            disk_field_name(name, fmt),
            shape=(attrs["rows"], *shape),
            dtype=dtype,
            track_times=False,
        )
    for key, value in attrs.items():  # in the order given: it shapes the header's bytes
        f.attrs[key] = attr_value(value)
    return f


def disk_values(name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Rows of field ``name`` as stored: caffe's float32 ``patches`` are in [0, 1]."""
    if name == "patches" and values.dtype == np.uint8 and np.dtype(dtype).kind == "f":
        return values.astype(np.float32) / np.float32(255.0)
    return values.astype(dtype, copy=False)


SIDECAR_SUFFIX = ".sha256"


def sidecar_path(shard: Path) -> Path:
    """``train-00000-of-00004.h5.sha256``: a finished shard's digest until the dataset is
    complete (then the manifest holds it and :func:`remove_sidecars` drops the file)."""
    return shard.with_name(shard.name + SIDECAR_SUFFIX)


def recorded_digest(shard: Path, manifest_digests: dict[str, str]) -> str | None:
    """The digest recorded for a shard when it was written: its sidecar, or the finished
    dataset's manifest (``manifest_digests``: file name -> sha256)."""
    side = sidecar_path(shard)
    if side.is_file():
        return side.read_text().strip() or None
    return manifest_digests.get(shard.name)


def remove_sidecars(directory: Path) -> None:
    for side in Path(directory).glob(f"*.h5{SIDECAR_SUFFIX}"):
        side.unlink()


def write_checksums(
    directory: str | Path, files: Sequence[str], known: dict[str, str] | None = None
) -> None:
    """Write ``SHA256SUMS`` (``sha256sum -c`` format) for ``files`` in ``directory``.

    ``known`` maps file names to digests already computed (the shards), to skip rehashing.
    """

    directory = Path(directory)
    known = known or {}
    lines = [f"{known.get(name) or sha256_file(directory / name)}  {name}\n" for name in files]
    write_text(directory / CHECKSUMS, "".join(lines))
