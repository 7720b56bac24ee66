"""Throughput of ``blursynth generate`` and where its time goes, beside albumentations.

Run by hand::

    BLURSYNTH_SHARED_DATA=../shared/data python benchmarks/bench_generate.py [--n 20]

Uses the real VOC sample under ``$BLURSYNTH_SHARED_DATA/voc-sample`` when present, else the
embedded sample. Prints images/s of the whole command on one core and with ``--jobs 2``, the
split of one-core time between decoding, rendering and encoding, and, on the same images and
kernel sizes, albumentations' ``MotionBlur`` + ``GaussianBlur`` against our two renderers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from blursynth.blurmodels import Scene
from blursynth.generate import OUTPUT_DIRS, default_voc_root, generate
from blursynth.imageio import read_image, to_u8, write_json, write_png
from blursynth.kernels import convolve, gaussian_kernel, motion_kernel
from blursynth.sampling import SampleRecord
from blursynth.sources.voc import VOCSegmentation, object_mask


def voc_root() -> Path:
    shared = os.environ.get("BLURSYNTH_SHARED_DATA")
    if shared and (Path(shared) / "voc-sample").is_dir():
        return Path(shared) / "voc-sample"
    return default_voc_root()


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="images per model")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # "one core": the main process renders with one OpenCV thread
    root = voc_root()
    ds = VOCSegmentation(root, "trainval")
    print(
        f"VOC: {root} ({len(ds.ids)} images); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )

    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for jobs in (1, 2):
            out = Path(tmp) / f"j{jobs}"
            t0 = time.perf_counter()
            generate(out, n=args.n, voc=root, split="trainval", jobs=jobs, quiet=True)
            rates[jobs] = 2 * args.n / (time.perf_counter() - t0)
        lines = (Path(tmp) / "j1" / "records.jsonl").read_text().splitlines()
        records = [SampleRecord.from_dict(json.loads(line)) for line in lines]

        # one-core split of the per-image work (scan and process start-up excluded)
        t_dec = t_ren = t_enc = 0.0
        loaded = []
        for r in records:
            t0 = time.perf_counter()
            fg, labels = ds.load(r.fg)
            bg = read_image(ds.image_path(r.bg))
            t1 = time.perf_counter()
            arrays = render(r, fg, labels, bg)
            t2 = time.perf_counter()
            for sub in OUTPUT_DIRS:
                write_png(Path(tmp) / "x" / f"{sub}.png", arrays[sub])
            write_json(Path(tmp) / "x" / "r.json", r.to_dict())
            t3 = time.perf_counter()
            t_dec, t_ren, t_enc = t_dec + t1 - t0, t_ren + t2 - t1, t_enc + t3 - t2
            loaded.append((r, fg, labels, bg))
    total = t_dec + t_ren + t_enc
    size = loaded[0][1].shape
    print(f"\nimage size {size[1]}x{size[0]}, {len(records)} images, seed 0")
    print(f"generate, 1 process : {rates[1]:6.1f} images/s")
    print(f"generate, --jobs 2  : {rates[2]:6.1f} images/s  ({rates[2] / rates[1]:.2f}x)")
    print(
        f"per image (1 core)  : {1000 * total / len(records):6.1f} ms = decode "
        f"{t_dec / total:.0%} + render {t_ren / total:.0%} + encode/write {t_enc / total:.0%}"
    )

    # same images, equal kernel sizes: one motion + one defocus render against
    # albumentations MotionBlur + GaussianBlur on the uint8 image
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A  # noqa: N812 (its own convention)

    motion = [x for x in loaded if x[0].model == "motion"]
    defocus = [x for x in loaded if x[0].model == "defocus"]
    pairs = list(zip(motion, defocus, strict=False))
    albu = []
    for (rm, fg, _, _), (rd, _, _, _) in pairs:
        km = max(motion_kernel(rm.blur.get("length"), rm.blur.get("angle")).shape)
        sigma = rd.blur.get("sigma1")
        kg = gaussian_kernel(sigma).shape[0]
        y0, x0, y1, x1 = rm.fg_box
        albu.append((to_u8(fg[y0:y1, x0:x1]), A.Compose([
            A.MotionBlur(blur_limit=(km, km), allow_shifted=False, p=1.0),
            A.GaussianBlur(blur_limit=(kg, kg), sigma_limit=(sigma, sigma), p=1.0),
        ])))  # fmt: skip

    def ours():
        for m, d in pairs:
            render(*m)
            render(*d)

    def theirs():
        for image, transform in albu:
            transform(image=image)

    blur_only = []
    for (rm, fg, _, _), (rd, _, _, _) in pairs:
        y0, x0, y1, x1 = rm.fg_box
        kernels = (
            motion_kernel(rm.blur.get("length"), rm.blur.get("angle")),
            gaussian_kernel(rd.blur.get("sigma1")),
        )
        blur_only.append((np.ascontiguousarray(fg[y0:y1, x0:x1]), kernels))

    def our_blurs():  # the same two blurs, without masks, compositing or ground truth
        for image, (km, kg) in blur_only:
            convolve(image, km)
            convolve(image, kg)

    # interleaved, best of 3 each, so that load from other processes hits all alike
    t_ours, t_albu, t_blur = best_of(ours), best_of(theirs), best_of(our_blurs)
    n = len(pairs)
    print(f"render motion+defocus (ours)       : {1000 * t_ours / n:6.1f} ms per pair")
    print(f"  of which the two blurs alone     : {1000 * t_blur / n:6.1f} ms per pair")
    print(f"albumentations MotionBlur+Gaussian : {1000 * t_albu / n:6.1f} ms per pair")
    print(
        f"ours / albumentations              : {t_ours / t_albu:.2f} (full render), "
        f"{t_blur / t_albu:.2f} (blurs alone)"
    )


def render(r: SampleRecord, fg, labels, bg):
    """The rendering step of :func:`blursynth.generate.rerender`, given decoded inputs."""
    fy0, fx0, fy1, fx1 = r.fg_box
    by0, bx0, by1, bx1 = r.bg_box
    f, b = fg[fy0:fy1, fx0:fx1], bg[by0:by1, bx0:bx1]
    m = object_mask(labels[fy0:fy1, fx0:fx1], r.cls)
    out = r.blur_model.render(Scene(f, b, m), r.blur_model.kernels(r.blur))
    image, soft_blur, binary = out.image, out.soft, out.binary
    return {"image": to_u8(image), "gt": binary.astype(np.uint8) * np.uint8(255),
            "soft": to_u8(soft_blur)}  # fmt: skip


if __name__ == "__main__":
    main()
