"""Dense segmentation speed and the accuracy cost of the fast mode; baseline timings.

Run by hand (results in ``docs/benchmarks.md``, section ``segment``)::

    BLURSYNTH_SHARED_DATA=../shared/data python benchmarks/bench_segment.py \
        --model runs/x/best.pt [--device cuda] [--images 2] [--tiles 128,256,512]

Images: the first motion and defocus images of ``cuhk-mini`` resized to 640 x 450, or random
pixels when the shared data is absent (timings only). Without ``--model`` the network is
randomly initialised: timings are valid, the accuracy columns are not.

Methods timed on one 640 x 450 image:

* naive: the patch network on batched 31 x 31 patches (``F.unfold``) of ``--naive-rows``
  full image rows, extrapolated to every pixel;
* exact: :meth:`BlurNet.dense_probs` with ``stride=1``;
* fast: ``stride=2`` and ``4``;
* the hand-crafted baselines.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from blursynth import baselines, metrics
from blursynth_train.checkpoint import load_model
from blursynth_train.models import BlurNet
from blursynth_train.predict import predict

SIZE = (450, 640)  # H, W


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best, out


def load_images(n: int) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``(name, uint8 image, bool mask or None)`` at 640 x 450."""
    root = os.environ.get("BLURSYNTH_SHARED_DATA")
    if root and (Path(root) / "cuhk-mini").is_dir():
        from blursynth.sources import open_source

        src = open_source("shi", Path(root) / "cuhk-mini")
        firsts = {}
        for item in src.items:
            firsts.setdefault(item.blur_type, item)
        out = []
        for item in list(firsts.values())[:n]:
            image, gt = src.load(item)
            image = cv2.resize(
                np.rint(image * 255).astype(np.uint8), SIZE[::-1], interpolation=cv2.INTER_AREA
            )
            gt = cv2.resize(gt.astype(np.uint8), SIZE[::-1], interpolation=cv2.INTER_NEAREST)
            out.append((item.stem, image, gt.astype(bool)))
        return out
    rng = np.random.default_rng(0)
    return [
        (f"random{i}", rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8), None) for i in range(n)
    ]


@torch.no_grad()
def unfold_seconds_per_pixel(model: BlurNet, image: np.ndarray, rows: int) -> float:
    """Per-pixel time of ``F.unfold`` over ``rows`` full image rows + the patch network."""
    device = next(model.parameters()).device
    r = model.config.patch_size // 2
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()
    x = F.pad(x, (r, r, r, r), mode="reflect").to(device)
    P = 2 * r + 1
    sync(device)
    t = time.perf_counter()
    strip = x[..., : rows + 2 * r, :]
    patches = F.unfold(strip, P)[0].T.reshape(-1, 3, P, P)
    for i in range(0, patches.shape[0], 256):
        torch.softmax(model(patches[i : i + 256]), dim=1)
    sync(device)
    return (time.perf_counter() - t) / (rows * image.shape[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint (default: random initialisation)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--naive-rows", type=int, default=4)
    ap.add_argument(
        "--tiles",
        default="128,256,512,1024",
        help="tile sizes to time at stride 4 (comma-separated; empty: skip)",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.model:
        model, _ = load_model(args.model, device)
    else:
        torch.manual_seed(0)
        model = BlurNet().to(device).eval()
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"model {args.model or 'random init'}"
    )
    images = load_images(args.images)
    n_px = SIZE[0] * SIZE[1]

    name, image, _ = images[0]
    print(f"\n## timings on {name} ({SIZE[1]} x {SIZE[0]})\n")
    print("| method | seconds / image | vs exact |")
    print("|---|---|---|")
    naive = unfold_seconds_per_pixel(model, image, args.naive_rows) * n_px
    probs, times = {}, {}
    for name_i, image_i, _ in images:
        for stride in (1, 2, 4):
            t, p = timed(lambda im=image_i, s=stride: predict(model, im, s), device)
            probs[(name_i, stride)] = p
            times.setdefault(stride, t)  # first image's time
    exact = times[1]
    rows = [
        (f"naive per patch (unfold, {args.naive_rows} rows, extrapolated)", naive),
        ("dense exact (stride 1)", times[1]),
        ("dense fast (stride 2)", times[2]),
        ("dense fast (stride 4)", times[4]),
    ]
    for method in ("su", "laplacian", "lbp"):
        t, _ = timed(
            lambda m=method: baselines.blur_map(image.astype(np.float32) / 255, m), device, repeat=3
        )
        rows.append((f"baseline {method}", t))
    for label, t in rows:
        print(f"| {label} | {t:.3f} | {t / exact:.3g}x |")

    print("\n## fast mode accuracy cost (vs stride 1)\n")
    print(
        "| image | stride | mean abs dp | max abs dp | mask IoU vs stride 1 "
        "| IoU vs GT (stride 1 -> s) |"
    )
    print("|---|---|---|---|---|---|")
    for name_i, _, gt in images:
        p1 = probs[(name_i, 1)]
        for stride in (2, 4):
            ps = probs[(name_i, stride)]
            d = np.abs(ps - p1)
            agree = metrics.iou(ps >= 0.5, p1 >= 0.5)
            gt_cell = (
                "–"
                if gt is None
                else (f"{metrics.iou(p1 >= 0.5, gt):.4f} -> {metrics.iou(ps >= 0.5, gt):.4f}")
            )
            print(
                f"| {name_i} | {stride} | {d.mean():.4f} | {d.max():.3f} | {agree:.4f} "
                f"| {gt_cell} |"
            )

    tiles = [int(t) for t in args.tiles.split(",") if t]
    if tiles:
        print(f"\n## tile size (stride 4, {name})\n")
        print("| tile | seconds |")
        print("|---|---|")
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(device)
        for tile in tiles:
            t, _ = timed(lambda tl=tile: model.dense_probs(x, stride=4, tile=tl), device)
            print(f"| {tile} | {t:.2f} |")


if __name__ == "__main__":
    main()
