"""Choose the post-processing of the CNN's probability map on *validation* images.

The held-out evaluation images must not pick settings, so this script scores a grid of
post-processing settings on the whole images behind a dataset's ``val`` patches (never
trained on, never used to report) and writes a Markdown table. The winner becomes a named
setting in :mod:`blursynth.postprocess`; ``blursynth_train evaluate`` then reports it once on
the held-out images.

    python experiments/tune_postprocess.py --dataset data/cuhk-both --model runs/x/best.pt \
        --split val --stride 4 --cache evals/maps-val --out experiments/postprocess_tuning.md

Probability maps are cached (``--cache``) so a second grid costs no CNN time.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from blursynth import metrics
from blursynth.baselines import otsu_normalise
from blursynth.imageio import to_u8, write_text
from blursynth.postprocess import guided_filter
from blursynth.progress import progressbar
from blursynth_train.device import resolve_device
from blursynth_train.evaluate import open_eval_images
from blursynth_train.predict import load_segmenter, predict

RADII = (8, 16, 32, 64)
FRACTIONS = (0.025, 0.05, 0.1)
"""Radii relative to the image's longer side (CUHK images are 364..1024 px wide)."""
EPSILONS = (1e-3, 1e-2, 1e-1)


def maps_for(
    model_path: str, dataset: str, split: str, stride: int, cache: Path | None, limit: int = 0
):
    """Yield ``(item, image, gt, prob)`` for every image of the split, caching ``prob``."""
    source, items = open_eval_images(dataset, split=split)
    if limit:  # the first ``limit`` images of each blur type (the split order is seeded)
        kept: dict[str, int] = {}
        chosen = []
        for it in items:
            if kept.get(it.blur_type, 0) < limit:
                kept[it.blur_type] = kept.get(it.blur_type, 0) + 1
                chosen.append(it)
        items = chosen
    model = None
    with progressbar(items, label=f"maps ({split})") as bar:
        for item in bar:
            image, gt = source.load(item)
            path = cache / f"{item.stem}.npy" if cache else None
            if path is not None and path.is_file():
                prob = np.load(path)
            else:
                if model is None:
                    model = load_segmenter(model_path, resolve_device("auto"))
                prob = predict(model, to_u8(image), stride)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.save(path, prob)
            yield item, image, gt, prob


def settings():
    """``(name, function(image, prob) -> map)`` for every setting of the grid."""
    yield "none", lambda image, prob: prob
    yield "otsu", lambda image, prob: otsu_normalise(prob)
    for r, eps in itertools.product(RADII, EPSILONS):
        yield (
            f"guided r={r} eps={eps:g}",
            (lambda image, prob, r=r, eps=eps: guided_filter(image, prob, r, eps)),
        )
        yield (
            f"guided r={r} eps={eps:g} + otsu",
            (lambda image, prob, r=r, eps=eps: otsu_normalise(guided_filter(image, prob, r, eps))),
        )
    for f, eps in itertools.product(FRACTIONS, EPSILONS):
        yield (
            f"guided r={f:g}*side eps={eps:g}",
            (lambda image, prob, f=f, eps=eps: guided_filter(image, prob, _radius(image, f), eps)),
        )


def _radius(image, fraction: float) -> int:
    return max(1, round(fraction * max(image.shape[:2])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--split", default="val", choices=["val", "eval", "train"])
    parser.add_argument("--stride", type=int, default=4, choices=[1, 2, 4])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--limit", type=int, default=0, help="at most this many images of each blur type (0: all)"
    )
    args = parser.parse_args()

    grid = list(settings())
    scores: dict[str, dict[str, list]] = {name: {} for name, _ in grid}
    for item, image, gt, prob in maps_for(
        args.model, args.dataset, args.split, args.stride, args.cache, args.limit
    ):
        for name, fn in grid:
            s = metrics.score_map(fn(image, prob), gt)
            for group in ("all", item.blur_type):
                scores[name].setdefault(group, []).append(s)
    groups = ("motion", "defocus", "all")
    rows = []
    for name, _ in grid:
        means = {g: metrics.average(scores[name][g]) for g in groups if g in scores[name]}
        rows.append((name, means))
    rows.sort(key=lambda r: -r[1]["all"]["miou"])
    n = {g: len(scores["none"].get(g, [])) for g in groups}
    lines = [
        f"# Post-processing grid on the {args.split} images of `{args.dataset}`",
        "",
        f"Model `{args.model}`, stride {args.stride}; {n['all']} images "
        f"({n['motion']} motion, {n['defocus']} defocus). Sorted by mean IoU (all).",
        "",
        "| setting | mIoU motion | mIoU defocus | mIoU all | IoU all | acc. all |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        cells = [f"{m[g]['miou']:.3f}" if g in m else "–" for g in groups]
        cells += [f"{m['all']['iou']:.3f}", f"{m['all']['accuracy']:.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines[:16]))


if __name__ == "__main__":
    main()
