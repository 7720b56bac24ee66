"""Issue 22, fifth round: does the shipped model gain from test-time flips or from seeing the
image at another scale?  No training: the shipped ``bundled`` checkpoint, scored on the 156
CUHK validation images (``evaluate --split val``) with every input resized by a factor
before the model and its probability map resized back (bilinear) to the image's size.

    python experiments/lite_scale_tta.py --scale 0.75 --scale 1.0 --scale 1.25 \
        --tta none --out evals/val-lite-scales

Writes one ``evaluate`` report per setting under OUT/ and prints a table.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import cv2
import numpy as np

from blursynth.imageio import to_u8
from blursynth.metrics import score_map
from blursynth.progress import progressbar
from blursynth.sources import open_dataset_images
from blursynth_train.evaluate import THRESHOLD
from blursynth_train.predict import Predictor, load_segmenter


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(32, round(w * scale)), max(32, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _map(predictor: Predictor, image: np.ndarray, scales: tuple[float, ...]) -> np.ndarray:
    """Mean blur probability over the scales, at the image's size."""
    h, w = image.shape[:2]
    total = np.zeros((h, w), np.float32)
    for s in scales:
        prob = predictor([_resized(image, s)])[0].prob
        total += prob if prob.shape == (h, w) else cv2.resize(prob, (w, h))
    return total / len(scales)


@click.command()
@click.option("--dataset", default="data/cuhk-tiles", show_default=True)
@click.option("--model", default="bundled", show_default=True)
@click.option(
    "--scale",
    "settings",
    multiple=True,
    required=True,
    help="a scale, or several joined by '+' (their maps averaged)",
)
@click.option("--tta", default="none", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def main(dataset, model, settings, tta, out):
    import torch

    torch.set_num_threads(2)
    predictor = Predictor(load_segmenter(model, torch.device("cpu")), tta=tta)
    source, items = open_dataset_images(dataset, "val")
    loaded = [source.load(item) for item in items]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for setting in settings:
        scales = tuple(float(s) for s in setting.split("+"))
        per = {"motion": [], "defocus": []}
        with progressbar(list(zip(items, loaded, strict=True)), label=setting) as bar:
            for item, (image, gt) in bar:
                score = score_map(_map(predictor, to_u8(image), scales), gt, threshold=THRESHOLD)
                per[item.blur_type].append(score["miou"])
        allv = per["motion"] + per["defocus"]
        row = {
            "scales": setting,
            "tta": tta,
            "motion": float(np.mean(per["motion"])),
            "defocus": float(np.mean(per["defocus"])),
            "all": float(np.mean(allv)),
            "n": len(allv),
        }
        rows.append(row)
        (out / f"scale-{setting}-{tta}.json").write_text(json.dumps(row, indent=1))
        print(
            f"{setting:>12} tta={tta}: mean IoU motion {row['motion']:.3f} "
            f"defocus {row['defocus']:.3f} all {row['all']:.3f} ({row['n']} images)"
        )


if __name__ == "__main__":
    main()
