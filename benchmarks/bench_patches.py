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
   Each is timed twice: when it returns (the bytes in the page cache, whose speed swings
   3x with how much is dirty) and after an ``os.sync()`` (the bytes on the disk: the
   comparison that measures the disk). ``--repeats`` rounds of all of that, the order of
   the builds alternating, each step starting with no dirty pages; the best of each is
   reported.
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


def timed_sync() -> float:
    """Seconds an ``os.sync()`` takes: the write-back still owed when it is called."""
    t0 = time.perf_counter()
    os.sync()
    return time.perf_counter() - t0


def raw_write(path: Path, nbytes: int) -> tuple[float, float]:
    """Seconds to write ``nbytes`` in 64 MiB ``os.write`` calls: as the calls return (page
    cache) and until the bytes are on the disk (an ``os.sync()`` after them)."""
    block = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        left = nbytes
        while left > 0:
            left -= os.write(fd, block[: min(left, len(block))])
    finally:
        os.close(fd)
    cached = time.perf_counter() - t0
    disk = cached + timed_sync()
    path.unlink()
    return cached, disk


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
    ap.add_argument(
        "--repeats", type=int, default=3, help="rounds of builds and raw write (best is kept)"
    )
    ap.add_argument("--layouts", action="store_true", help="compare HDF5 layouts too")
    args = ap.parse_args()

    trees = []
    if not args.skip_build:
        if args.baseline_tree:
            trees.append((f"baseline ({args.baseline_tree})", args.baseline_tree))
        trees.append(("this checkout", None))
    # wall seconds per build and per raw write: as returned (bytes in the page cache) and
    # until an os.sync() after it returns (bytes on the disk)
    walls: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in trees}
    rss: dict[str, float] = {}
    raws: list[tuple[float, float]] = []
    nbytes = 0
    for round_ in range(args.repeats if trees else 0):
        # Each measurement starts with no dirty pages, so none pays for the write-back of
        # another; the order of the builds alternates between rounds.
        order = trees if round_ % 2 == 0 else trees[::-1]
        for name, tree in order:
            out = args.out if tree is None else args.out.with_name(args.out.name + "-baseline")
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            wall, peak = build(args, out, tree)
            walls[name].append((wall, wall + timed_sync()))
            rss[name] = max(rss.get(name, 0.0), peak)
            if tree is not None:
                shutil.rmtree(out, ignore_errors=True)
        with open_dataset(args.out) as ds:
            nbytes = sum(p.stat().st_size for s in ds.splits for p in ds[s].shards)
        os.sync()
        raw = raw_write(args.out.parent / "bench_patches_raw.bin", nbytes)
        raws.append(raw)
        print(
            f"round {round_ + 1}: raw write {raw[0]:.1f} s / on disk {raw[1]:.1f} s; "
            + ", ".join(
                f"{name} {w[-1][0]:.1f} / {w[-1][1]:.1f} s ({w[-1][1] / raw[1]:.1f}x on disk)"
                for name, w in walls.items()
            )
        )
    with open_dataset(args.out) as ds:
        rows = sum(len(ds[s]) for s in ds.splits)
        if raws:
            print(
                f"{rows:,} patches, {nbytes / 1e9:.2f} GB of shards, jobs={args.jobs}, best of "
                f"{len(raws)}; raw write of the same bytes: {min(r[0] for r in raws):.1f} s to "
                f"the page cache, {min(r[1] for r in raws):.1f} s on disk "
                f"({nbytes / min(r[1] for r in raws) / 1e6:.0f} MB/s)"
            )
            print(
                "| build | wall s | on disk s | patches/s | / raw write (page cache) "
                "| / raw write (on disk) | peak RSS MiB |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            for name, w in walls.items():
                cached, disk = min(x[0] for x in w), min(x[1] for x in w)
                print(
                    f"| {name} | {cached:.1f} | {disk:.1f} | {rows / cached:,.0f} "
                    f"| {cached / min(r[0] for r in raws):.1f}x "
                    f"| {disk / min(r[1] for r in raws):.1f}x | {rss[name]:.0f} |"
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
