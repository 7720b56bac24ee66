"""Throughput of ``blursynth patches``: build, raw-write baseline, batch reads, HDF5 layouts.

Run by hand; results go to ``docs/benchmarks.md`` (``## patches``)::

    python benchmarks/bench_patches.py --root ../shared/data/cuhk --train 1000000 --val 250000
    git worktree add /tmp/old HEAD~5 && python benchmarks/bench_patches.py --baseline-tree /tmp/old

1. Builds a dataset with the CLI in a child process: wall time, patches/s, peak RSS of the
   largest process (the builder or one of its workers, measured by a wrapper process).
   With ``--baseline-tree DIR`` (a ``git worktree`` of an older commit) it first builds
   the same dataset with that code, so the two are compared side by side in one run.
2. Writes the same number of bytes raw (64 MiB ``os.write`` calls, no fsync, like the
   builder) to the same disk, and reports each build's time as a multiple of it.
3. Reads random contiguous batches (64 and 4096 rows) through :func:`open_dataset`.
4. ``--layouts``: rewrites the first train shard as contiguous / chunked / lzf / gzip and
   times writing it and reading random batches from it (the evidence for the layout).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from blursynth.shards import open_dataset

# Runs a command and prints the peak RSS (KiB) of its largest process, itself or a worker
# (RUSAGE_CHILDREN covers every waited-for descendant).
_RSS_WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def build(args, out: Path, tree: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one build, with ``tree``'s code if given."""
    cmd = [
        sys.executable,
        "-m",
        "blursynth.cli",
        "patches",
        "--source",
        "shi",
        "--root",
        str(args.root.resolve()),
        "--out",
        str(out.resolve()),
        "--train-patches",
        str(args.train),
        "--val-patches",
        str(args.val),
        "--jobs",
        str(args.jobs),
        "--quiet",
    ]
    env = dict(os.environ)
    cwd = None
    if tree is not None:  # that tree's package first on the path; not this checkout's
        env["PYTHONPATH"] = str(tree.resolve())
        cwd = tree.resolve()
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *cmd],
        check=True,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    return wall, int(res.stdout.split()[-1]) / 1024


def raw_write(path: Path, nbytes: int) -> float:
    block = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        left = nbytes
        while left > 0:
            left -= os.write(fd, block[: min(left, len(block))])
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - t0
    path.unlink()
    return elapsed


def time_reads(read, rows: int, batch: int, repeats: int, rng) -> float:
    """Mean seconds per random contiguous batch."""
    starts = rng.integers(0, rows - batch, repeats)
    t0 = time.perf_counter()
    for s in starts:
        read(int(s), int(s) + batch)
    return (time.perf_counter() - t0) / repeats


def layouts(shard: Path, scratch: Path) -> None:
    with h5py.File(shard, "r") as f:
        patches = f["patches"][()]
    n = len(patches)
    variants = {
        "contiguous": {},
        "chunks 1024": {"chunks": (1024, *patches.shape[1:])},
        "chunks 4096": {"chunks": (4096, *patches.shape[1:])},
        "chunks 1024 + lzf": {"chunks": (1024, *patches.shape[1:]), "compression": "lzf"},
        "chunks 1024 + gzip 1": {
            "chunks": (1024, *patches.shape[1:]),
            "compression": "gzip",
            "compression_opts": 1,
        },
    }
    print(f"\nlayouts ({n} rows of {patches.shape[1:]} uint8, {patches.nbytes / 1e6:.0f} MB):")
    print("| layout | file MB | write s | batch 64 ms | batch 4096 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, kw in variants.items():
        path = scratch / "layout.h5"
        t0 = time.perf_counter()
        with h5py.File(path, "w") as f:
            f.create_dataset("patches", data=patches, track_times=False, **kw)
        write = time.perf_counter() - t0
        size = path.stat().st_size / 1e6
        rng = np.random.default_rng(0)
        with h5py.File(path, "r") as f:
            d = f["patches"]
            b64 = time_reads(lambda a, b, d=d: d[a:b], n, 64, 300, rng)
            b4k = time_reads(lambda a, b, d=d: d[a:b], n, 4096, 30, rng)
        print(f"| {name} | {size:.0f} | {write:.2f} | {b64 * 1e3:.2f} | {b4k * 1e3:.1f} |")
        path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("../shared/data/cuhk"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_patches"))
    ap.add_argument("--train", type=int, default=1_000_000)
    ap.add_argument("--val", type=int, default=250_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-build", action="store_true", help="reuse --out")
    ap.add_argument(
        "--baseline-tree",
        type=Path,
        help="Also build with the code of this tree (e.g. a git worktree of an older commit).",
    )
    ap.add_argument("--layouts", action="store_true", help="compare HDF5 layouts too")
    args = ap.parse_args()

    builds = []
    if args.baseline_tree and not args.skip_build:
        base_out = args.out.with_name(args.out.name + "-baseline")
        builds.append(
            (f"baseline ({args.baseline_tree})", *build(args, base_out, args.baseline_tree))
        )
        shutil.rmtree(base_out, ignore_errors=True)
    if not args.skip_build:
        builds.append(("this checkout", *build(args, args.out)))
    with open_dataset(args.out) as ds:
        rows = sum(len(ds[s]) for s in ds.splits)
        nbytes = sum(p.stat().st_size for s in ds.splits for p in ds[s].shards)
        if builds:
            raw = raw_write(args.out / "raw.bin", nbytes)
            print(
                f"{rows:,} patches, {nbytes / 1e9:.2f} GB of shards, jobs={args.jobs}; raw write "
                f"of the same bytes: {raw:.1f} s ({nbytes / raw / 1e6:.0f} MB/s)"
            )
            print("| build | wall s | patches/s | / raw write | peak RSS MiB |")
            print("|---|---:|---:|---:|---:|")
            for name, wall, rss in builds:
                print(
                    f"| {name} | {wall:.1f} | {rows / wall:,.0f} | {wall / raw:.1f}x | {rss:.0f} |"
                )
        train = ds["train"]
        rng = np.random.default_rng(1)
        for batch, repeats in ((64, 2000), (4096, 100)):
            t = time_reads(
                lambda a, b: train.read(a, b, fields=("patches", "label")),
                len(train),
                batch,
                repeats,
                rng,
            )
            print(f"read batch {batch}: {t * 1e3:.2f} ms = {batch / t:,.0f} patches/s")
        if args.layouts:
            layouts(train.shards[0], args.out)


if __name__ == "__main__":
    main()
