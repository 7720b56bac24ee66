"""A build at the scale people publish: ``generate`` → ``tiles`` → ``patches``, end to end.

Run by hand, in the background (each step is resumable: rerun the same command after an
interruption and finished steps are skipped, an interrupted one resumes); results go to
``docs/benchmarks.md`` (``## a build at scale``)::

    BLURSYNTH_SHARED_DATA=../shared/data nohup python benchmarks/bench_build_scale.py \\
        --work /tmp/scale --n 5000 > scale.log 2>&1 &

1. ``generate --objects ECSSD --objects DUTS --model all --n N`` with the camera options
   (shake, disk, linear light, noise, a uniform share, JPEG 90): 4 × N images.
2. ``tiles`` and ``patches`` of it (``--source synth``, the defaults), then ``verify`` of both,
   and the tiles' and patches' shards read through ``datasets.load_dataset("hdf5")``
   (streaming: no Arrow copy of tens of GB).
3. The floor of each dataset build, measured on the same disk in the same run: decode every
   source image once (its image and truth PNGs, on the same number of processes), then write
   the dataset's bytes raw, hash them and ``sync``. Each build is reported as a multiple of it,
   timed the same way: until a ``sync`` after it returns (a build's shards left in the page
   cache are not yet written; the floor waits for its bytes, so must the build).
4. ``--small N2``: the same three steps at N2 per model, to show peak memory flat in the
   number of images; and ``generate`` of it on a loopback ``dask.distributed`` cluster of
   ``--jobs`` single-threaded workers beside local processes, side by side.

``--again tiles patches`` builds the datasets of finished renderings again, each beside a
floor measured right after it (this VM's disk changes speed from hour to hour); with
``--builds-in /dev/shm/...`` both write to memory, which shows what a build costs beyond its
floor when the disk costs nothing::

    python benchmarks/bench_build_scale.py --work /tmp/again --again tiles patches \
        --renderings /work/sub2k --builds-in /dev/shm/bench --rounds 3

Each step runs the CLI in a child process; its wall time and the peak RSS of its largest
process (the command or one of its workers) are recorded in ``WORK/results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import cv2

_RSS_WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
CAMERA = [
    "--motion-kernel", "shake", "--defocus-kernel", "disk", "--linear-light", "--noise",
    "--uniform-share", "0.1", "--jpeg", "90",
]  # fmt: skip


def run(cmd: list[str], durable: bool = False) -> dict:
    """Wall seconds and the peak RSS (MiB) of the largest process of one CLI call.

    ``durable``: the wall time runs until what the call wrote is on disk (``sync`` after it,
    as the floor syncs its bytes; the page cache is flushed before it starts)."""
    if durable:
        os.sync()
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *cmd], check=True, capture_output=True, text=True
    )
    if durable:
        os.sync()
    wall = time.perf_counter() - t
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(int(out.stdout.split()[-1]) / 1024)}


def cli(package: str, *args) -> list[str]:
    return [sys.executable, "-m", f"{package}.cli", *map(str, args)]


def folder_bytes(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def _decode(paths: tuple[str, str]) -> int:
    cv2.setNumThreads(1)
    image, gt = cv2.imread(paths[0], cv2.IMREAD_COLOR), cv2.imread(paths[1], cv2.IMREAD_GRAYSCALE)
    return image.nbytes + gt.nbytes


def floor(gen: Path, nbytes: int, jobs: int, scratch: Path) -> dict:
    """Decode every source image once (``jobs`` processes), then write ``nbytes`` raw in
    64 MiB blocks while hashing them, then ``sync``: what any build of the dataset must do."""
    names = sorted(p.name for p in (gen / "image").glob("*.png"))
    pairs = [(str(gen / "image" / n), str(gen / "gt" / n)) for n in names]
    os.sync()
    t = time.perf_counter()
    with Pool(jobs) as pool:
        decoded = sum(pool.imap_unordered(_decode, pairs, chunksize=64))
    t_decode = time.perf_counter() - t
    block = os.urandom(64 << 20)
    sha = hashlib.sha256()
    t = time.perf_counter()
    with open(scratch, "wb") as f:
        left = nbytes
        while left > 0:
            chunk = block[: min(left, len(block))]
            f.write(chunk)
            sha.update(chunk)
            left -= len(chunk)
    os.sync()
    t_write = time.perf_counter() - t
    scratch.unlink()
    return {
        "decode_s": round(t_decode, 1),
        "write_hash_sync_s": round(t_write, 1),
        "floor_s": round(t_decode + t_write, 1),
        "decoded_mib": round(decoded / 2**20),
    }


def stage(results: dict, key: str, path: Path, fn) -> dict:
    """Run ``fn`` once: its result is kept in ``results`` (and on disk) for a rerun."""
    if key not in results:
        print(f"[{time.strftime('%H:%M:%S')}] {key} ...", flush=True)
        results[key] = fn()
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {key}: {results[key]}", flush=True)
    return results[key]


def build(results, rpath, tag: str, work: Path, n: int, jobs: int, shared: Path, extra=()):
    """generate, tiles, patches, verify and their floors at ``n`` images per model."""
    gen, tiles, patches = work / f"gen-{tag}", work / f"tiles-{tag}", work / f"patches-{tag}"
    sources = ["--objects", shared / "ecssd", "--objects", shared / "duts-subset"]
    resume = ["--resume"] if (gen / "run.json").is_file() else []
    g = stage(results, f"{tag}/generate", rpath, lambda: run(cli(
        "blursynth", "generate", *sources, "--model", "all", "--n", n, "--out", gen,
        "-j", jobs, "-q", *CAMERA, *resume, *extra,
    )))  # fmt: skip
    images = 4 * n
    g.setdefault("images_per_s", round(images / g["wall_s"], 2))
    g.setdefault("bytes_per_image", round(folder_bytes(gen) / images))
    for kind, out in (("tiles", tiles), ("patches", patches)):
        r = stage(
            results,
            f"{tag}/{kind}",
            rpath,
            lambda kind=kind, out=out: timed_build(kind, gen, out, jobs),
        )
        stage(results, f"{tag}/{kind}-verify", rpath, lambda out=out: run(cli(
            "blursynth", "verify", out, "-q")))  # fmt: skip
        r.setdefault("shard_bytes", folder_bytes(out, "*.h5"))
        f = stage(results, f"{tag}/{kind}-floor", rpath, lambda r=r: floor(
            gen, r["shard_bytes"], jobs, work / "floor.bin"))  # fmt: skip
        r["over_floor"] = round(r["wall_s"] / f["floor_s"], 2)
    rpath.write_text(json.dumps(results, indent=1) + "\n")
    return gen, tiles, patches


def timed_build(kind: str, gen: Path, out: Path, jobs: int) -> dict:
    """``tiles`` or ``patches`` of the renderings ``gen``, timed until its bytes are on disk."""
    return run(
        cli("blursynth", kind, "--source", "synth", "--root", gen, "--out", out, "-j", jobs, "-q"),
        durable=True,
    )


def again(results, rpath, gen: Path, builds: Path, jobs: int, kinds, rounds: int = 1) -> None:
    """Build ``kinds`` of the finished renderings ``gen`` anew in ``builds`` (the folder
    removed first), each beside its floor measured right after it (its bytes written in
    ``builds`` too), ``rounds`` times, and append each pair to ``results["again"]`` with
    the time of day: the same step on other hours' disk, or, with ``builds`` on a tmpfs
    such as ``/dev/shm``, with no disk at all (the builder's own cost against the floor's)."""
    if not (gen / "image").is_dir():
        raise SystemExit(f"{gen}: no renderings (image/)")
    builds.mkdir(parents=True, exist_ok=True)
    for _ in range(rounds):
        for kind in kinds:
            out = builds / f"{kind}-again"
            shutil.rmtree(out, ignore_errors=True)
            print(f"[{time.strftime('%H:%M:%S')}] {kind} again ...", flush=True)
            r = timed_build(kind, gen, out, jobs)
            r["shard_bytes"] = folder_bytes(out, "*.h5")
            shutil.rmtree(out)
            f = floor(gen, r["shard_bytes"], jobs, builds / "floor.bin")
            entry = {"kind": kind, "renderings": str(gen), "builds_in": str(builds)}
            entry.update(at=time.strftime("%Y-%m-%d %H:%M"), **r, floor=f)
            entry["over_floor"] = round(r["wall_s"] / f["floor_s"], 2)
            results.setdefault("again", []).append(entry)
            rpath.write_text(json.dumps(results, indent=1) + "\n")
            print(f"[{time.strftime('%H:%M:%S')}] {kind} again: {entry}", flush=True)


def hf_load(folder: Path) -> dict:
    """The shards of a dataset through Hugging Face ``datasets`` (streaming): rows seen."""
    import datasets
    from blursynth.shards import open_dataset

    with open_dataset(folder) as ds:
        files = {"train": [str(p) for p in ds["train"].shards]}
        expected = len(ds["train"])
    hf = datasets.load_dataset("hdf5", data_files=files, streaming=True)["train"]
    first = next(iter(hf))
    return {"columns": sorted(first), "expected_rows": expected}


def dask_generate(results, rpath, work: Path, n: int, jobs: int, shared: Path) -> None:
    """``generate`` of ``n`` per model on a loopback dask cluster, beside local processes."""
    from distributed import LocalCluster

    sources = ["--objects", shared / "ecssd", "--objects", shared / "duts-subset"]

    def gen(out, *backend):
        return run(cli(
            "blursynth", "generate", *sources, "--model", "all", "--n", n, "--out", out,
            "-j", jobs, "-q", *CAMERA, *backend,
        ))  # fmt: skip

    stage(results, "dask/local", rpath, lambda: gen(work / "gen-local"))
    with LocalCluster(
        n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        stage(results, "dask/dask", rpath, lambda: gen(
            work / "gen-dask", "--backend", "dask", "--scheduler", address))  # fmt: skip
    same = (
        subprocess.run(
            [
                "diff",
                "-r",
                "-x",
                "report.json",
                "-x",
                ".lock",
                work / "gen-local",
                work / "gen-dask",
            ],
            capture_output=True,
        ).returncode
        == 0
    )
    results["dask/identical_bytes"] = same
    rpath.write_text(json.dumps(results, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="Scratch folder (tens of GB).")
    ap.add_argument("--n", type=int, default=5000, help="Images per model (4 models).")
    ap.add_argument("--small", type=int, default=250, help="Per model for the small run.")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--skip", nargs="*", default=(), choices=("large", "small", "dask"))
    ap.add_argument(
        "--again",
        nargs="+",
        choices=("tiles", "patches"),
        help="Only build these again from finished renderings, each beside its floor.",
    )
    ap.add_argument(
        "--renderings",
        type=Path,
        help="With --again: the renderings to build from [default: WORK/gen-nN].",
    )
    ap.add_argument(
        "--builds-in",
        type=Path,
        help="With --again: where the builds and the floor write (e.g. /dev/shm/bench: no "
        "disk) [default: WORK].",
    )
    ap.add_argument("--rounds", type=int, default=1, help="With --again: rounds of each.")
    args = ap.parse_args()
    shared = Path(os.environ.get("BLURSYNTH_SHARED_DATA", "../shared/data")).resolve()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    rpath = work / "results.json"
    results = json.loads(rpath.read_text()) if rpath.is_file() else {}
    results.setdefault("machine", f"{platform.machine()}, {os.cpu_count()} CPUs")
    results.setdefault("date", time.strftime("%Y-%m-%d"))
    if args.again:
        gen = (args.renderings or work / f"gen-n{args.n}").resolve()
        again(results, rpath, gen, args.builds_in or work, args.jobs, args.again, args.rounds)
        return
    if "small" not in args.skip:
        build(results, rpath, f"n{args.small}", work, args.small, args.jobs, shared)
    if "dask" not in args.skip:
        dask_generate(results, rpath, work, max(args.small // 5, 10), args.jobs, shared)
    if "large" not in args.skip:
        _, tiles, patches = build(results, rpath, f"n{args.n}", work, args.n, args.jobs, shared)
        stage(results, f"n{args.n}/hf-tiles", rpath, lambda: hf_load(tiles))
        stage(results, f"n{args.n}/hf-patches", rpath, lambda: hf_load(patches))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
