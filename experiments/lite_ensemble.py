"""Issue 22, seventh round: what do several trained 2-class checkpoints say together?  No
training: each checkpoint's blur-probability maps of the 156 CUHK validation images
(``evaluate --split val``) are computed once and cached; every named combination is then
scored with the maps averaged. Also, per model: the score with each image's map cut at its
Otsu threshold instead of 0.5, and the score a per-image oracle threshold would reach (the
best of 19 thresholds for each image, chosen on its own truth): how much of the gap is the
ranking of pixels and how much where each map is cut. Last, how the first model's
per-image scores spread: how much of the mean the worst images hold.

    python experiments/lite_ensemble.py --model s0=runs/lite-cuhk/best.pt \
        --model s1=runs/lite-cuhk-s1/best.pt --model s2=runs/lite-cuhk-s2/best.pt \
        --combo s0+s1 --combo s0+s1+s2 --out evals/val-lite-ensemble

Writes OUT/maps-NAME.npz (the cached maps, float16) and OUT/ensembles.json, and prints a
table.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import cv2
import numpy as np

from blursynth.imageio import to_u8
from blursynth.metrics import mean_iou
from blursynth.progress import progressbar
from blursynth.sources import open_dataset_images
from blursynth_train.evaluate import THRESHOLD

ORACLE_THRESHOLDS = np.linspace(0.05, 0.95, 19)


def _maps(name: str, path: str, loaded: list, cache: Path) -> list[np.ndarray]:
    """The model's probability maps of the loaded images, from the cache when there."""
    if cache.exists():
        with np.load(cache) as z:
            return [z[f"m{i}"].astype(np.float32) for i in range(len(loaded))]
    import torch

    from blursynth_train.predict import Predictor, load_segmenter

    predictor = Predictor(load_segmenter(path, torch.device("cpu")))
    maps = []
    with progressbar(loaded, label=name) as bar:
        for image, _ in bar:
            maps.append(predictor([to_u8(image)])[0].prob.astype(np.float32))
    tmp = cache.with_suffix(".part.npz")
    np.savez_compressed(tmp, **{f"m{i}": m.astype(np.float16) for i, m in enumerate(maps)})
    tmp.replace(cache)
    return maps


def _otsu(prob: np.ndarray) -> np.ndarray:
    u8 = np.round(prob * 255).astype(np.uint8)
    t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return u8 > t


def _scores(loaded, maps, cut="fixed") -> np.ndarray:
    """Each image's mean IoU with its map cut at 0.5, at its Otsu threshold, or at the
    oracle's best threshold."""
    out = []
    for (_, gt), prob in zip(loaded, maps, strict=True):
        if cut == "oracle":
            out.append(max(mean_iou(prob >= t, gt) for t in ORACLE_THRESHOLDS))
        elif cut == "otsu":
            out.append(mean_iou(_otsu(prob), gt))
        else:
            out.append(mean_iou(prob >= THRESHOLD, gt))
    return np.array(out)


def _row(label, items, scores, cut="fixed") -> dict:
    motion = np.array([item.blur_type == "motion" for item in items])
    return {
        "name": label if cut == "fixed" else f"{label} ({cut} threshold)",
        "motion": float(scores[motion].mean()),
        "defocus": float(scores[~motion].mean()),
        "all": float(scores.mean()),
        "n": len(scores),
    }


def _spread(name, scores) -> dict:
    """How a model's per-image scores spread, and the mean without the worst tenth."""
    scores = np.sort(scores)
    tenth = len(scores) // 10
    return {
        "name": name,
        "quantiles 0/10/25/50/75/90/100 %": np.quantile(scores, [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1])
        .round(3)
        .tolist(),
        "images below 0.5 / 0.6": [int((scores < 0.5).sum()), int((scores < 0.6).sum())],
        "mean": float(scores.mean()),
        "mean without the worst tenth": float(scores[tenth:].mean()),
    }


@click.command()
@click.option("--dataset", default="data/cuhk-tiles", show_default=True)
@click.option("--model", "models", multiple=True, required=True, help="NAME=CHECKPOINT")
@click.option("--combo", "combos", multiple=True, help="NAMES joined by '+' (maps averaged)")
@click.option("--oracle/--no-oracle", default=True, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def main(dataset, models, combos, oracle, out):
    import torch

    torch.set_num_threads(1)
    source, items = open_dataset_images(dataset, "val")
    loaded = [source.load(item) for item in items]
    out.mkdir(parents=True, exist_ok=True)
    maps = {}
    for spec in models:
        name, path = spec.split("=", 1)
        maps[name] = _maps(name, path, loaded, out / f"maps-{name}.npz")
    fixed = {name: _scores(loaded, maps[name]) for name in maps}
    rows = [_row(name, items, fixed[name]) for name in maps]
    for combo in combos:
        names = combo.split("+")
        mean = [np.mean(ms, axis=0) for ms in zip(*(maps[n] for n in names), strict=True)]
        rows.append(_row(combo, items, _scores(loaded, mean)))
    cuts = ("otsu", "oracle") if oracle else ("otsu",)
    rows += [_row(n, items, _scores(loaded, maps[n], c), c) for c in cuts for n in maps]
    first = next(iter(maps))
    spread = _spread(first, fixed[first])
    (out / "ensembles.json").write_text(json.dumps({"rows": rows, "spread": spread}, indent=1))
    for r in rows:
        print(
            f"{r['name']:>28}: mean IoU motion {r['motion']:.3f} defocus {r['defocus']:.3f} "
            f"all {r['all']:.3f} ({r['n']} images)"
        )
    print(json.dumps(spread))


if __name__ == "__main__":
    main()
