"""``generate`` from object-mask folders against the VOC path, and the cost of the camera.

Run by hand, side by side in one run (results in ``docs/benchmarks.md``, ``## generate``)::

    BLURSYNTH_SHARED_DATA=../shared/data python benchmarks/bench_sources.py [--n 10]

Configurations: the real VOC sample; ECSSD (``--objects``); ECSSD with every camera option
(shake, disk, linear light, noise, JPEG 90); each at ``--png-level`` 6 (the level before the
option), level 1 with zlib's default strategy and Pillow's adaptive filter (the option's
first default), and level 1 with ``rle`` and one libpng filter per image (the default now),
one after the other. For each: images/s of the whole ``generate`` in
one process (scan included), then, per image on one core, decode (reading F and B) + render
(crops, kernels, compositing, camera, ground truth) + encode (three PNGs and the record): the
median of ``--repeat`` rounds in which every encoding is timed once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from blursynth.generate import OUTPUT_DIRS, generate, rerender, scene_sources
from blursynth.imageio import read_image, write_json, write_png
from blursynth.sampling import SampleParams, SampleRecord

CAMERA = SampleParams(
    motion_kernel="shake", defocus_kernel="disk", linear_light=True, noise=True, jpeg=90
)


ENCODINGS = ((6, "default", "adaptive"), (1, "default", "adaptive"), (1, "rle", "auto"))
"""``--png-level``/``--png-strategy``/``--png-filter``: before issue 24, its first default,
the default now."""


def split_times(out: Path, sources, scratch: Path, png: tuple) -> tuple[float, float, float]:
    """Mean seconds per image: decode, render, encode (one core)."""
    level, strategy, filter_ = png
    records = [
        SampleRecord.from_dict(json.loads(line))
        for line in (out / "records.jsonl").read_text().splitlines()
    ]
    dec = ren = enc = 0.0
    for r in records:
        t0 = time.perf_counter()
        sources.load(r.fg)
        read_image(sources.image_path(r.bg))
        t1 = time.perf_counter()
        arrays = rerender(r, sources)  # decodes again: its decode time is taken off below
        t2 = time.perf_counter()
        for sub in OUTPUT_DIRS:
            write_png(
                scratch / f"{sub}.png", arrays[sub], level=level, strategy=strategy, filter=filter_
            )
        write_json(scratch / "r.json", r.to_dict())
        t3 = time.perf_counter()
        dec, ren, enc = dec + (t1 - t0), ren + (t2 - t1) - (t1 - t0), enc + (t3 - t2)
    n = len(records)
    return dec / n, ren / n, enc / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="images per model")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved timings per encoding")
    args = ap.parse_args()
    shared = Path(os.environ.get("BLURSYNTH_SHARED_DATA", "../shared/data"))
    voc, ecssd = shared / "voc-sample", shared / "ecssd"
    cv2.setNumThreads(1)
    sources = (
        ("VOC sample (--voc)", {"voc": voc, "split": "trainval"}, None),
        ("ECSSD (--objects)", {"objects": [ecssd]}, None),
        ("ECSSD + shake, disk, linear light, noise, JPEG 90", {"objects": [ecssd]}, CAMERA),
    )
    print(
        f"{2 * args.n} images per configuration (seed 0), one process, one OpenCV thread; "
        f"per-image times: the median of {args.repeat} rounds, the encodings interleaved"
    )
    print(
        "| source | PNG level, strategy, filter | images/s (whole run) | ms/image: decode | render "
        "| encode | total | × level 6 | kB/image |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, where, params) in enumerate(sources):
            rows = {}
            for png in ENCODINGS:  # side by side, one after the other
                out = Path(tmp) / f"c{k}-{'-'.join(map(str, png))}"
                t0 = time.perf_counter()
                generate(
                    out, n=args.n, quiet=True, params=params, png_level=png[0],
                    png_strategy=png[1], png_filter=png[2], **where,
                )  # fmt: skip
                rate = 2 * args.n / (time.perf_counter() - t0)
                kb = sum(f.stat().st_size for f in out.rglob("*.png")) / 2 / args.n / 1000
                rows[png] = (out, rate, kb, [])
            src = scene_sources(
                where.get("voc"), where.get("split", "train"), where.get("objects", ())
            )
            scratch = Path(tmp) / "x"
            scratch.mkdir(exist_ok=True)
            for _ in range(args.repeat):  # every encoding in each round: drift hits all alike
                for png, (out, _, _, times) in rows.items():
                    times.append(split_times(out, src, scratch, png))
            before = None
            for png, (_, rate, kb, times) in rows.items():
                dec, ren, enc = (statistics.median(t[i] for t in times) for i in range(3))
                total = statistics.median(sum(t) for t in times)
                before = before or total
                print(
                    f"| {name} | {', '.join(map(str, png))} | {rate:.1f} | {1000 * dec:.0f} | "
                    f"{1000 * ren:.0f} | {1000 * enc:.0f} | {1000 * total:.0f} | "
                    f"{before / total:.2f} | {kb:.0f} |"
                )


if __name__ == "__main__":
    main()
