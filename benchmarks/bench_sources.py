"""``generate`` from object-mask folders against the VOC path, and the cost of the camera.

Run by hand, side by side in one run (results in ``docs/benchmarks.md``, ``## generate``)::

    BLURSYNTH_SHARED_DATA=../shared/data python benchmarks/bench_sources.py [--n 10]

Configurations: the real VOC sample; ECSSD (``--objects``); ECSSD with every camera option
(shake, disk, linear light, noise, JPEG 90); each at ``--png-level`` 6 (the level before the
option) and 1 (its default), one after the other. For each: images/s of the whole ``generate`` in
one process (scan included), then, per image on one core, decode (reading F and B) + render
(crops, kernels, compositing, camera, ground truth) + encode (three PNGs and the record).
"""

from __future__ import annotations

import argparse
import json
import os
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


def split_times(out: Path, sources, scratch: Path, level: int) -> tuple[float, float, float]:
    """Mean seconds per image: decode, render, encode (one core)."""
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
            write_png(scratch / f"{sub}.png", arrays[sub], level=level)
        write_json(scratch / "r.json", r.to_dict())
        t3 = time.perf_counter()
        dec, ren, enc = dec + (t1 - t0), ren + (t2 - t1) - (t1 - t0), enc + (t3 - t2)
    n = len(records)
    return dec / n, ren / n, enc / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="images per model")
    args = ap.parse_args()
    shared = Path(os.environ.get("BLURSYNTH_SHARED_DATA", "../shared/data"))
    voc, ecssd = shared / "voc-sample", shared / "ecssd"
    cv2.setNumThreads(1)
    configs = [
        (f"{name}, --png-level {level}", where, params, level)
        for name, where, params in (
            ("VOC sample (--voc)", {"voc": voc, "split": "trainval"}, None),
            ("ECSSD (--objects)", {"objects": [ecssd]}, None),
            ("ECSSD + shake, disk, linear light, noise, JPEG 90", {"objects": [ecssd]}, CAMERA),
        )
        for level in (6, 1)  # before the option, and its default: side by side
    ]
    print(f"{2 * args.n} images per configuration (seed 0), one process, one OpenCV thread")
    print("| source | images/s (whole run) | ms/image: decode | render | encode | image size |")
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, where, params, level) in enumerate(configs):
            out = Path(tmp) / f"c{k}"
            t0 = time.perf_counter()
            generate(out, n=args.n, quiet=True, params=params, png_level=level, **where)
            rate = 2 * args.n / (time.perf_counter() - t0)
            sources = scene_sources(
                where.get("voc"), where.get("split", "train"), where.get("objects", ())
            )
            scratch = Path(tmp) / "x"
            scratch.mkdir(exist_ok=True)
            dec, ren, enc = split_times(out, sources, scratch, level)
            h, w = read_image(out / "image" / "motion0001.png").shape[:2]
            print(
                f"| {name} | {rate:.1f} | {1000 * dec:.0f} | {1000 * ren:.0f} | "
                f"{1000 * enc:.0f} | {w}x{h} |"
            )


if __name__ == "__main__":
    main()
