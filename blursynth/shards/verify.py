"""Verification and summaries of a dataset folder: checksums, schema, labels; ``info``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.kinds import get_kind
from blursynth.schema import CHECKSUMS, SCHEMA_VERSION
from blursynth.shards.format import disk_field_name, field_specs, sha256_file
from blursynth.shards.reader import ShardedDataset, open_dataset


@dataclass
class Problems:
    """Problems found by :func:`verify_dataset`, one line each, naming the file."""

    lines: list[str] = field(default_factory=list)

    def add(self, path, message: str) -> None:
        self.lines.append(f"{path}: {message}")


def verify_dataset(path, *, quiet: bool = True) -> ShardedDataset:
    """Check checksums and schema of a dataset; raise naming every bad file.

    Checks: ``SHA256SUMS`` and the manifest's per-shard sha256 against the bytes; each shard
    has every field with the right dtype, shape and row count, and its attributes match the
    manifest; labels are 0/1 and agree with the category (sharp -> 0, blurred -> 1).

    Returns
    -------
    ShardedDataset
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
    shards = [(split, s) for split, entry in ds.manifest.splits.items() for s in entry.shards]
    others = [name for name in listed if name not in {s.file for _, s in shards}]
    specs = field_specs(ds.manifest.row_size, ds.format, ds.kind)
    with progressbar(shards, label="verify", quiet=quiet) as bar:
        for split, s in bar:
            file = root / s.file
            if not file.exists():
                problems.add(file, "shard missing")
                continue
            digest = sha256_file(file)
            if digest != s.sha256:
                problems.add(file, "sha256 differs from manifest.json (file changed or corrupt)")
            elif s.file in listed and listed[s.file] != digest:
                problems.add(file, "sha256 differs from SHA256SUMS")
            if s.file not in listed and listed:
                problems.add(file, "not listed in SHA256SUMS")
            _check_shard(file, s.rows, split, specs, ds.format, ds.manifest.plan_sha256, problems)
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
    file: Path, rows: int, split: str, specs, fmt: str, plan: str, problems: Problems
) -> None:
    """Check one shard's datasets, attributes and labels; any read failure is a problem.

    A damaged file can fail anywhere inside h5py (OSError, KeyError, RuntimeError...), so
    every failure is reported as ``shard unreadable``, never raised.
    """
    try:
        with h5py.File(file, "r") as f:
            _check_shard_contents(f, file, rows, split, specs, fmt, plan, problems)
    except Exception as exc:  # noqa: BLE001 - h5py raises many types on corrupt metadata
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.add(file, f"shard unreadable: {type(exc).__name__}: {detail}")


def _check_shard_contents(f, file, rows, split, specs, fmt, plan, problems) -> None:
    for name, (dtype, shape) in specs.items():
        key = disk_field_name(name, fmt)
        if key not in f:
            problems.add(file, f"dataset {key!r} missing")
            continue
        d = f[key]
        if d.dtype != dtype or d.shape != (rows, *shape):
            problems.add(
                file,
                f"dataset {key!r} is {d.dtype} {d.shape}, expected {dtype} {(rows, *shape)}",
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

    if "label" in f and f["label"].ndim == 3:  # tile label maps
        label = f["label"][()]
        bad = ((label > 2) & (label != 255)).any(axis=(1, 2))
        if bad.any():
            problems.add(
                file,
                f"{int(bad.sum())} tile(s) with a label outside 0-2 and 255 (first at row "
                f"{int(np.flatnonzero(bad)[0])})",
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
            f"kind: {ds.kind}",
            f"blursynth: {ds.manifest.blursynth_version}",
        ]
        for name, (dtype, shape) in field_specs(ds.manifest.row_size, ds.format, ds.kind).items():
            dims = "".join(f", {d}" for d in shape)
            lines.append(f"  {disk_field_name(name, ds.format)}: {dtype} (N{dims})")
        for split in ds.splits:
            reader = ds[split]
            lines.append(f"{split}: {len(reader):,} rows in {len(reader.shards)} shard(s)")
        lines.append("parameters:")
        for key, value in sorted(ds.params.items()):
            lines.append(f"  {key}: {value}")
        lines.append(f"skipped images: {len(ds.manifest.skipped)}")
        lines.append(f"eval images (held out): {len(ds.manifest.eval_images)}")
        lines.append(get_kind(ds.kind).resolve("summary")(ds.manifest.counts))
    return "\n".join(lines)
