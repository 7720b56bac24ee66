"""Reading a dataset folder: splits across shards, mixes of splits, the folder itself.

Reading (the trainer's API)::

    with open_dataset("DIR") as ds:
        train = ds["train"]
        batch = train.read(0, 4096, fields=("patches", "label"))

HDF5 handles are opened lazily and re-opened after a fork: a DataLoader worker that received
the object before forking opens its own handles (still, create/open inside each worker where
you can).
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.schema import MANIFEST, Manifest
from blursynth.shards.format import disk_field_name, field_specs


class SplitReader:
    """Rows of one split across its shards; contiguous reads may span shards.

    Handles are opened on first read and re-opened in a forked child.
    """

    def __init__(
        self, dataset: ShardedDataset, name: str, shards: list[Path], rows: list[int], fmt: str
    ):
        self.name = name
        self.shards = list(shards)
        self._dataset = dataset
        self._specs = field_specs(dataset.manifest.row_size, fmt, dataset.kind)
        self.fields = tuple(self._specs)
        self._fmt = fmt
        self._starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64).tolist()
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._starts[-1]

    def __repr__(self) -> str:
        return f"SplitReader({self.name!r}, rows={len(self)}, shards={len(self.shards)})"

    def _datasets(self, index: int) -> dict[str, h5py.Dataset]:
        """The shard's datasets by field name, opening the file on first use."""
        if self._pid != os.getpid():  # forked: the parent's handles are not ours to use
            self._handles = {}
            self._pid = os.getpid()
        found = self._handles.get(index)
        if found is None:
            path = self.shards[index]
            try:
                f = h5py.File(path, "r")
                found = {name: f[disk_field_name(name, self._fmt)] for name in self.fields}
            except (OSError, KeyError) as exc:
                raise BlursynthError(f"cannot read shard ({exc})", path) from None
            self._handles[index] = found
        return found

    def read(
        self, start: int, stop: int, fields: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` as a dict of arrays (see :mod:`blursynth.shards.format`).

        Parameters
        ----------
        start, stop : int
            ``0 <= start <= stop <= len(self)``.
        fields : sequence of str
            Any of :attr:`fields` (default all).
        """
        n = len(self)
        if not 0 <= start <= stop <= n:
            raise IndexError(f"rows {start}:{stop} out of range for {self.name} ({n} rows)")
        fields = self.fields if fields is None else fields
        unknown = set(fields) - set(self.fields)
        if unknown:
            raise KeyError(f"unknown field(s) {sorted(unknown)}; fields are {self.fields}")
        shard = bisect.bisect_right(self._starts, start) - 1
        if start < stop <= self._starts[shard + 1]:  # the common case: one shard, one read each
            s0 = self._starts[shard]
            d = self._datasets(shard)
            return {name: d[name][start - s0 : stop - s0] for name in fields}
        # several shards, or no row (start == stop, also at the end of the split or in an
        # empty one, where ``shard + 1`` is past the last shard)
        specs = self._specs
        out = {
            name: np.empty((stop - start, *specs[name][1]), dtype=specs[name][0]) for name in fields
        }
        pos = start
        while pos < stop:
            s0, s1 = self._starts[shard], self._starts[shard + 1]
            take = min(stop, s1) - pos
            if take > 0:
                d = self._datasets(shard)
                for name in fields:
                    out[name][pos - start : pos - start + take] = d[name][
                        pos - s0 : pos - s0 + take
                    ]
                pos += take
            shard += 1
        return out

    def locate(self, row: int) -> tuple[Path, int]:
        """The shard file holding split row ``row`` and the row's index inside it."""
        shard = bisect.bisect_right(self._starts, row) - 1
        return self.shards[shard], row - self._starts[shard]

    def iter_blocks(
        self, block_rows: int, fields: Sequence[str] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield consecutive blocks of ``block_rows`` rows (the last may be shorter)."""
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        for start in range(0, len(self), block_rows):
            yield self.read(start, min(start + block_rows, len(self)), fields)

    def close(self) -> None:
        if self._pid == os.getpid():
            for found in self._handles.values():
                found["label"].file.close()
        self._handles = {}

    def __getstate__(self):  # picklable for spawned workers: handles are reopened there
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state


class MixedSplit:
    """Several splits read as one, their rows interleaved in stripes.

    Row ``i`` of the mix is a row of one of the splits; the splits' stripes of ``stripe_rows``
    consecutive rows are ordered by their relative position in their own split, so every
    block of the mix holds the splits in proportion to their sizes (shards are pre-shuffled,
    so a stripe is a random sample of its split). Reads are contiguous per stripe; the mix
    is a pure function of the splits' lengths, so the same inputs give the same rows.

    Parameters
    ----------
    splits : sequence of SplitReader
        At least one; all with the same fields and patch size.
    stripe_rows : int
        Rows per stripe, >= 1.
    """

    def __init__(self, splits: Sequence[SplitReader], stripe_rows: int = 256):
        if not splits:
            raise ValueError("MixedSplit needs at least one split")
        if stripe_rows < 1:
            raise ValueError(f"stripe_rows must be >= 1, got {stripe_rows}")
        self.splits = list(splits)
        self.name = "+".join(s.name for s in self.splits)
        keys, table = [], []
        for j, split in enumerate(self.splits):
            n = len(split)
            count = -(-n // stripe_rows)
            for k in range(count):
                keys.append(((k + 0.5) / count, j))
                table.append((j, k * stripe_rows, min(stripe_rows, n - k * stripe_rows)))
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._table = [table[i] for i in order]
        lengths = [t[2] for t in self._table]
        self._starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64).tolist()

    def __len__(self) -> int:
        return self._starts[-1]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.splits[0].fields

    def __repr__(self) -> str:
        return f"MixedSplit({self.name!r}, rows={len(self)}, splits={len(self.splits)})"

    def read(
        self, start: int, stop: int, fields: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of the mix (as :meth:`SplitReader.read`)."""
        fields = self.splits[0].fields if fields is None else fields
        n = len(self)
        if not 0 <= start <= stop <= n:
            raise IndexError(f"rows {start}:{stop} out of range for {self.name} ({n} rows)")
        parts = []
        k = bisect.bisect_right(self._starts, start) - 1
        pos = start
        while pos < stop:
            j, first, _ = self._table[k]
            s0, s1 = self._starts[k], self._starts[k + 1]
            take = min(stop, s1) - pos
            parts.append(self.splits[j].read(first + pos - s0, first + pos - s0 + take, fields))
            pos += take
            k += 1
        if not parts:
            return self.splits[0].read(0, 0, fields)
        return {name: np.concatenate([p[name] for p in parts]) for name in fields}

    def close(self) -> None:
        for split in self.splits:
            split.close()


class ShardedDataset:
    """A dataset folder opened through its ``manifest.json`` (see :func:`open_dataset`).

    Attributes
    ----------
    path : Path
    manifest : blursynth.schema.Manifest
    manifest_sha256 : str
        sha256 of the manifest's bytes: identifies the data (shard hashes included).
    kind : str
        The dataset kind (``"patches"``).
    params : dict
        The builder's parameters (``patch_size``, ``seed``, ``source``, ...).
    format : str
    splits : tuple of str
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise BlursynthError("dataset folder not found", self.path)
        self.manifest, raw = Manifest.read(self.path / MANIFEST)
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self.kind = self.manifest.kind
        self.params = self.manifest.params
        self.format = self.manifest.format
        self._splits = {
            name: SplitReader(
                self,
                name,
                [self.path / s.file for s in entry.shards],
                [s.rows for s in entry.shards],
                self.format,
            )
            for name, entry in self.manifest.splits.items()
        }
        self.splits = tuple(self._splits)

    def __getitem__(self, split: str) -> SplitReader:
        try:
            return self._splits[split]
        except KeyError:
            raise BlursynthError(
                f"no split {split!r} (splits: {', '.join(self.splits)})", self.path
            ) from None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self._splits.items())
        return f"ShardedDataset({str(self.path)!r}, {self.kind}, {sizes})"

    def close(self) -> None:
        for split in self._splits.values():
            split.close()

    def __enter__(self) -> ShardedDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dataset(path) -> ShardedDataset:
    """Open a dataset folder (one with ``manifest.json``).

    Raises
    ------
    BlursynthError
        Naming the folder or manifest when it is missing or invalid.
    """
    return ShardedDataset(path)
