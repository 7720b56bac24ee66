"""Sharded HDF5 patch datasets: writer, reader, manifest, checksums, verification.

A dataset is a folder::

    DIR/train-00000-of-00010.h5 ...   shards, rows shuffled within the split
    DIR/val-00000-of-00003.h5 ...
    DIR/eval.json                     whole images held out for dense evaluation
    DIR/manifest.json                 schema, parameters, shards (rows, sha256), counts table
    DIR/README.md                     dataset card (Hugging Face front matter)
    DIR/SHA256SUMS                    ``sha256sum -c SHA256SUMS`` checks everything

Every shard holds only row-aligned datasets (same first dimension), so
``datasets.load_dataset("hdf5", data_files=...)`` loads it unchanged:

==============  =========================  ==============================================
name            dtype, shape               meaning
==============  =========================  ==============================================
``patches``     uint8 (N, 3, P, P)         RGB patch, NCHW (``--format caffe``: ``data``,
                                           float32 in [0, 1])
``label``       uint8 (N,)                 1 = the centre pixel is blurred (caffe: float32)
``blur_type``   uint8 (N,)                 index into ``BLUR_TYPES``
``category``    uint8 (N,)                 index into ``CATEGORIES`` (GT inside the window)
``image_index`` int32 (N,)                 index into ``manifest["images"]``
``center_y/x``  int32 (N,)                 centre pixel in the source image
==============  =========================  ==============================================

Layout: datasets are **contiguous and uncompressed** (see ``docs/benchmarks.md``: natural
image patches barely compress with lzf/gzip, and a contiguous slice -- a random batch,
since rows are shuffled -- is then one read with no decompression). Files are written with
``track_times=False`` and no wall-clock metadata: the same plan gives the same bytes.

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
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from blursynth import __version__
from blursynth.errors import BlursynthError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
EVAL_LIST = "eval.json"
CARD = "README.md"

BLUR_TYPES = ("motion", "defocus", "unknown")
CATEGORIES = ("sharp", "blurred", "mixed")
FIELDS = ("patches", "label", "blur_type", "category", "image_index", "center_y", "center_x")
PROVENANCE_DTYPES = {
    "blur_type": np.uint8,
    "category": np.uint8,
    "image_index": np.int32,
    "center_y": np.int32,
    "center_x": np.int32,
}
FORMATS = ("hdf5", "caffe")
# Caffe's HDF5 layer refuses files over 2 GB; stay well under.
CAFFE_MAX_SHARD_BYTES = 1_500_000_000


def shard_name(split: str, index: int, count: int) -> str:
    """``train-00003-of-00010.h5`` (the Hugging Face naming)."""
    return f"{split}-{index:05d}-of-{count:05d}.h5"


def disk_field_name(name: str, fmt: str) -> str:
    """The HDF5 dataset name of a field: caffe calls the patches ``data``."""
    return "data" if (name == "patches" and fmt == "caffe") else name


def field_specs(patch_size: int, fmt: str) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """dtype and per-row shape of every field on disk, keyed by API field name."""
    if fmt not in FORMATS:
        raise BlursynthError(f"format must be one of {FORMATS}, got {fmt!r}")
    pixel, label = (np.float32, np.float32) if fmt == "caffe" else (np.uint8, np.uint8)
    specs = {
        "patches": (np.dtype(pixel), (3, patch_size, patch_size)),
        "label": (np.dtype(label), ()),
    }
    specs.update({k: (np.dtype(v), ()) for k, v in PROVENANCE_DTYPES.items()})
    return specs


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


# --- writer ---------------------------------------------------------------------------------


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
    patch_size : int
    fmt : {"hdf5", "caffe"}
        ``caffe`` stores ``data`` float32 in [0, 1] and float32 ``label``.
    attrs : dict
        Root attributes for every shard (str, int, float; dicts/lists are stored as JSON).

    Examples
    --------
    >>> with ShardWriter(out, "train", n, 100_000, 31, "hdf5", attrs) as w:  # doctest: +SKIP
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
        patch_size: int,
        fmt: str,
        attrs: dict,
    ):
        if rows_per_shard < 1:
            raise BlursynthError(f"rows per shard must be >= 1, got {rows_per_shard}")
        self.directory = Path(directory)
        self.split = split
        self.total_rows = int(total_rows)
        self.rows_per_shard = int(rows_per_shard)
        self.fmt = fmt
        self.specs = field_specs(patch_size, fmt)
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
        rows = self.shard_rows(index)
        # libver="earliest" + track_times=False: no timestamps, stable bytes across runs.
        f = h5py.File(self._tmp, "w", libver="earliest", track_order=False)
        for name, (dtype, shape) in self.specs.items():
            f.create_dataset(
                disk_field_name(name, self.fmt),
                shape=(rows, *shape),
                dtype=dtype,
                track_times=False,
            )
        for key, value in sorted(self.attrs.items()):
            f.attrs[key] = _attr_value(value)
        f.attrs["split"] = self.split
        f.attrs["shard_index"] = index
        f.attrs["num_shards"] = self.num_shards
        f.attrs["row_start"] = index * self.rows_per_shard
        f.attrs["rows"] = rows
        f.attrs["format"] = self.fmt
        self._file = f
        self._in_shard = 0

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
                values = batch[name][done : done + take]
                if name == "patches" and self.fmt == "caffe" and values.dtype == np.uint8:
                    values = values.astype(np.float32) / np.float32(255.0)
                self._file[disk_field_name(name, self.fmt)][
                    self._in_shard : self._in_shard + take
                ] = values.astype(dtype, copy=False)
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
        self.records.append(
            ShardRecord(path.name, self.shard_rows(len(self.records)), sha256_file(path))
        )

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


def _attr_value(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "null"
    return value


def shard_attrs(path: str | Path) -> dict:
    """Root attributes of a shard (JSON strings left as they are)."""
    with h5py.File(path, "r") as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}


# --- reader ---------------------------------------------------------------------------------


class SplitReader:
    """Rows of one split across its shards; contiguous reads may span shards.

    Handles are opened on first read and re-opened in a forked child.
    """

    def __init__(
        self, dataset: PatchDataset, name: str, shards: list[Path], rows: list[int], fmt: str
    ):
        self.name = name
        self.shards = list(shards)
        self._dataset = dataset
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
                found = {name: f[disk_field_name(name, self._fmt)] for name in FIELDS}
            except (OSError, KeyError) as exc:
                raise BlursynthError(f"cannot read shard ({exc})", path) from None
            self._handles[index] = found
        return found

    def read(self, start: int, stop: int, fields: Sequence[str] = FIELDS) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` as a dict of arrays (see the module table for dtypes).

        Parameters
        ----------
        start, stop : int
            ``0 <= start <= stop <= len(self)``.
        fields : sequence of str
            Any of ``FIELDS``.
        """
        n = len(self)
        if not 0 <= start <= stop <= n:
            raise IndexError(f"rows {start}:{stop} out of range for {self.name} ({n} rows)")
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise KeyError(f"unknown field(s) {sorted(unknown)}; fields are {FIELDS}")
        shard = bisect.bisect_right(self._starts, start) - 1
        if start < stop <= self._starts[shard + 1]:  # the common case: one shard, one read each
            s0 = self._starts[shard]
            d = self._datasets(shard)
            return {name: d[name][start - s0 : stop - s0] for name in fields}
        # several shards, or no row (start == stop, also at the end of the split or in an
        # empty one, where ``shard + 1`` is past the last shard)
        specs = field_specs(self._dataset.params["patch_size"], self._fmt)
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

    def iter_blocks(
        self, block_rows: int, fields: Sequence[str] = FIELDS
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

    def __repr__(self) -> str:
        return f"MixedSplit({self.name!r}, rows={len(self)}, splits={len(self.splits)})"

    def read(self, start: int, stop: int, fields: Sequence[str] = FIELDS) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of the mix (as :meth:`SplitReader.read`)."""
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


class PatchDataset:
    """A patch dataset folder opened through its ``manifest.json`` (see :func:`open_dataset`).

    Attributes
    ----------
    path : Path
    manifest : dict
    manifest_sha256 : str
    params : dict
        Sampling parameters (``patch_size``, ``seed``, ``source``, ...).
    splits : tuple of str
    """

    def __init__(self, path):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not self.path.is_dir():
            raise BlursynthError("dataset folder not found", self.path)
        try:
            raw = manifest_path.read_bytes()
        except FileNotFoundError:
            raise BlursynthError(
                "no manifest.json: not a finished patch dataset (rerun `blursynth patches`"
                " to complete it)",
                manifest_path,
            ) from None
        try:
            manifest = json.loads(raw)
            schema = manifest["schema_version"]
            splits = manifest["splits"]
            self.params = manifest["params"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BlursynthError(f"invalid manifest ({exc!r})", manifest_path) from None
        if schema != SCHEMA_VERSION:
            raise BlursynthError(
                f"schema version {schema}, this blursynth reads {SCHEMA_VERSION}", manifest_path
            )
        self.manifest = manifest
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self._splits = {}
        try:
            self.format = self.params.get("format", "hdf5")
            for name, info in splits.items():
                shards = [self.path / s["file"] for s in info["shards"]]
                rows = [int(s["rows"]) for s in info["shards"]]
                self._splits[name] = SplitReader(self, name, shards, rows, self.format)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BlursynthError(
                f"invalid manifest: bad split entry ({exc!r})", manifest_path
            ) from None
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
        return f"PatchDataset({str(self.path)!r}, {sizes})"

    def eval_source(self, split: str = "eval"):
        """Whole images of the dataset's source: ``(source, items)``.

        Parameters
        ----------
        split : {"eval", "val", "train"}
            ``eval``: the held-out images listed in ``eval.json``; ``val`` / ``train``: the
            images whose patches form that split (per the manifest). Choose settings on
            ``val`` images and report on ``eval`` images, which no choice has seen.
        """
        from blursynth.sources import open_source

        if split not in ("eval", "val", "train"):
            raise BlursynthError(f"split must be eval, val or train, got {split!r}", self.path)

        path = self.path / EVAL_LIST
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BlursynthError("no eval.json: this dataset holds out no images", path) from None
        except ValueError as exc:
            raise BlursynthError(f"invalid eval list ({exc})", path) from None
        try:
            options = dict(spec.get("options", {}))
            blur_type = options.pop("blur_type", None)
            kind, root, entries = spec["source"], spec["root"], spec["items"]
            stems = [entry["stem"] for entry in entries]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BlursynthError(f"invalid eval list: missing or bad {exc!r}", path) from None
        if split != "eval":
            images = self.manifest.get("images") or []
            stems = [
                im["stem"]
                for im in images
                if isinstance(im, dict) and im.get("split") == split and "stem" in im
            ]
            if not stems:
                raise BlursynthError(f"the manifest lists no {split} image", self.path / MANIFEST)
        source = open_source(kind, root, **options)
        by_stem = {it.stem: it for it in source.items}
        items = []
        for stem in stems:
            item = by_stem.get(stem)
            if item is None:
                raise BlursynthError(f"{split} image {stem!r} is not in {root}", path)
            if blur_type:
                from dataclasses import replace

                item = replace(item, blur_type=blur_type)
            items.append(item)
        return source, items

    def close(self) -> None:
        for split in self._splits.values():
            split.close()

    def __enter__(self) -> PatchDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def training_data_sha256(manifest_sha256s: Sequence[str]) -> str:
    """One hash for the data a model was trained on.

    A single dataset keeps its manifest's sha256; several hash their manifests' hashes in
    the order given (the order fixes how :class:`MixedSplit` interleaves them).
    """
    if len(manifest_sha256s) == 1:
        return manifest_sha256s[0]
    return hashlib.sha256("\n".join(manifest_sha256s).encode()).hexdigest()


def open_dataset(path) -> PatchDataset:
    """Open a patch dataset folder (one with ``manifest.json``).

    Raises
    ------
    BlursynthError
        Naming the folder or manifest when it is missing or invalid.
    """
    return PatchDataset(path)


# --- manifest, checksums, verify, info ------------------------------------------------------


@dataclass
class Problems:
    """Problems found by :func:`verify_dataset`, one line each, naming the file."""

    lines: list[str] = field(default_factory=list)

    def add(self, path, message: str) -> None:
        self.lines.append(f"{path}: {message}")


def write_checksums(
    directory: str | Path, files: Sequence[str], known: dict[str, str] | None = None
) -> None:
    """Write ``SHA256SUMS`` (``sha256sum -c`` format) for ``files`` in ``directory``.

    ``known`` maps file names to digests already computed (the shards), to skip rehashing.
    """
    from blursynth.imageio import write_text

    directory = Path(directory)
    known = known or {}
    lines = [f"{known.get(name) or sha256_file(directory / name)}  {name}\n" for name in files]
    write_text(directory / CHECKSUMS, "".join(lines))


def verify_dataset(path, *, quiet: bool = True) -> PatchDataset:
    """Check checksums and schema of a dataset; raise naming every bad file.

    Checks: ``SHA256SUMS`` and the manifest's per-shard sha256 against the bytes; each shard
    has every field with the right dtype, shape and row count, and its attributes match the
    manifest; labels are 0/1 and agree with the category (sharp -> 0, blurred -> 1).

    Returns
    -------
    PatchDataset
        The opened dataset when everything matches.

    Raises
    ------
    BlursynthError
        Listing the problems, one line per file.
    """
    from blursynth.progress import progressbar

    ds = open_dataset(path)
    problems = Problems()
    root = ds.path
    sums = root / CHECKSUMS
    listed: dict[str, str] = {}
    if not sums.exists():
        problems.add(sums, "missing")
    else:
        for line in sums.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            listed[name.strip()] = digest
    shards = [(split, s) for split, info in ds.manifest["splits"].items() for s in info["shards"]]
    others = [name for name in listed if name not in {s["file"] for _, s in shards}]
    p = ds.params["patch_size"]
    specs = field_specs(p, ds.format)
    with progressbar(shards, label="verify", quiet=quiet) as bar:
        for split, s in bar:
            file = root / s["file"]
            if not file.exists():
                problems.add(file, "shard missing")
                continue
            digest = sha256_file(file)
            if digest != s["sha256"]:
                problems.add(file, "sha256 differs from manifest.json (file changed or corrupt)")
            elif s["file"] in listed and listed[s["file"]] != digest:
                problems.add(file, "sha256 differs from SHA256SUMS")
            if s["file"] not in listed and listed:
                problems.add(file, "not listed in SHA256SUMS")
            _check_shard(file, s, split, specs, ds.format, ds.manifest["plan_sha256"], problems)
    for name in others:
        file = root / name
        if not file.exists():
            problems.add(file, "listed in SHA256SUMS but missing")
        elif sha256_file(file) != listed[name]:
            problems.add(file, "sha256 differs from SHA256SUMS")
    if problems.lines:
        ds.close()
        raise BlursynthError(f"{len(problems.lines)} problem(s):\n" + "\n".join(problems.lines))
    return ds


def _check_shard(
    file: Path, record: dict, split: str, specs, fmt: str, plan: str, problems: Problems
) -> None:
    try:
        f = h5py.File(file, "r")
    except OSError as exc:
        problems.add(file, f"not a readable HDF5 file ({exc})")
        return
    with f:
        for name, (dtype, shape) in specs.items():
            key = disk_field_name(name, fmt)
            if key not in f:
                problems.add(file, f"dataset {key!r} missing")
                continue
            d = f[key]
            if d.dtype != dtype or d.shape != (record["rows"], *shape):
                problems.add(
                    file,
                    f"dataset {key!r} is {d.dtype} {d.shape}, expected {dtype} "
                    f"{(record['rows'], *shape)}",
                )
        if f.attrs.get("plan_sha256") != plan or f.attrs.get("split") != split:
            problems.add(file, "attributes do not match manifest.json (shard from another run)")
        if "label" in f and "category" in f and f["label"].shape == f["category"].shape:
            label, category = f["label"][()], f["category"][()]
            bad = (
                (~np.isin(label, (0, 1)))
                | ((category == 0) & (label != 0))
                | ((category == 1) & (label != 1))
                | (category > 2)
            )
            if bad.any():
                problems.add(
                    file,
                    f"{int(bad.sum())} row(s) with a label/category that cannot"
                    f" be (first at row {int(np.flatnonzero(bad)[0])})",
                )


def counts_table(counts: list[dict]) -> str:
    """A markdown table of achieved counts (split x blur type x category x label)."""
    lines = ["| split | blur type | category | label | patches |", "|---|---|---|---|---:|"]
    for row in counts:
        lines.append(
            f"| {row['split']} | {row['blur_type']} | {row['category']} | "
            f"{row['label']} | {row['count']:,} |"
        )
    return "\n".join(lines)


def dataset_info(path) -> str:
    """A text summary of a dataset: splits, shards, shapes, parameters, counts."""
    with open_dataset(path) as ds:
        lines = [
            f"dataset: {ds.path}",
            f"format: {ds.format} (schema {SCHEMA_VERSION})",
            f"blursynth: {ds.manifest.get('blursynth_version')}",
        ]
        p = ds.params["patch_size"]
        for name, (dtype, shape) in field_specs(p, ds.format).items():
            dims = "".join(f", {d}" for d in shape)
            lines.append(f"  {disk_field_name(name, ds.format)}: {dtype} (N{dims})")
        for split in ds.splits:
            reader = ds[split]
            lines.append(f"{split}: {len(reader):,} rows in {len(reader.shards)} shard(s)")
        lines.append("parameters:")
        for key, value in sorted(ds.params.items()):
            lines.append(f"  {key}: {value}")
        skipped = ds.manifest.get("skipped", [])
        lines.append(f"skipped images: {len(skipped)}")
        ev = ds.manifest.get("eval_images", [])
        lines.append(f"eval images (held out): {len(ev)}")
        lines.append(counts_table(ds.manifest["counts"]))
    return "\n".join(lines)


def manifest_base() -> dict:
    """Fields every manifest starts with."""
    return {
        "schema_version": SCHEMA_VERSION,
        "blursynth_version": __version__,
        "blur_types": list(BLUR_TYPES),
        "categories": list(CATEGORIES),
    }
