"""Figures for docs/results.md.

    python experiments/make_figures.py curves --out docs/curves.png NAME=RUN_DIR ...
    python experiments/make_figures.py qualitative --source synth --root DIR \
        [--model NAME=PATH ...] --out docs/qualitative-dense.png [--n 4]
    python experiments/make_figures.py camera --out docs/camera-models.png

``curves`` draws the validation accuracy of several ``fit`` runs (the report's Figure 4 as a
comparison); ``qualitative`` draws, per image, the image, its ground truth, the CNN map, the
CNN map after the guided filter and the baselines (the report's Figure 7). Only figures of
redistributable images (e.g. ``generate`` output of the embedded sample) are committed; run
it on ``--source shi --root ../shared/data/cuhk-mini`` to look at real CUHK images locally.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from blursynth import baselines
from blursynth.imageio import atomic_path, to_u8
from blursynth.sources import open_source
from blursynth_train.device import resolve_device
from blursynth_train.plots import plot_runs, read_log
from blursynth_train.predict import load_segmenter


@click.group()
def main():
    """Figures for docs/results.md."""


@main.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--title", default="validation accuracy (4,096 val patches)")
def curves(runs, out, title):
    """Validation accuracy of RUNS given as NAME=RUN_DIR."""
    logs = {}
    for spec in runs:
        name, run = spec.split("=", 1)
        logs[name] = read_log(Path(run) / "log.csv")
    plot_runs(logs, out, title=title)
    click.echo(f"wrote {out}")


@main.command()
@click.option("--source", "kind", required=True, type=click.Choice(["shi", "synth", "folder"]))
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="NAME=PATH",
    help="Model to show (repeatable; PATH may be bundled, report, types). Default: the "
    "bundled dense model and the report CNN.",
)
@click.option("--n", default=4, show_default=True, help="Images (spread over the source).")
@click.option("--stride", default=2, show_default=True, type=click.Choice(["1", "2", "4"]))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def qualitative(kind, root, models, n, stride, out):
    """Image | ground truth | each model's map | Su | Laplacian, one row per image."""
    from blursynth_train.predict import model_maps
    from blursynth_train.weights import resolve_weights

    specs = [m.split("=", 1) for m in (models or ("dense U-Net=bundled", "report CNN=report"))]
    loaded = [
        (name, load_segmenter(resolve_weights(path), resolve_device("auto")))
        for name, path in specs
    ]
    source = open_source(kind, root)
    picks = np.linspace(0, len(source) - 1, min(n, len(source))).round().astype(int)
    columns = (
        "image",
        "ground truth",
        *(name for name, _ in loaded),
        "Su et al.",
        "Laplacian var.",
    )
    fig = Figure(figsize=(2.2 * len(columns), 1.8 * len(picks)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(picks), len(columns), squeeze=False)
    for row, index in enumerate(picks):
        item = source[int(index)]
        image, gt = source.load(item)
        probs = [model_maps(model, [to_u8(image)], int(stride))[0][0] for _, model in loaded]
        maps = (
            image,
            gt.astype(np.float32),
            *probs,
            baselines.blur_map(image, "su"),
            baselines.blur_map(image, "laplacian"),
        )
        for col, shown in enumerate(maps):
            ax = axes[row, col]
            ax.imshow(shown, cmap=None if shown.ndim == 3 else "magma", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
        axes[row, 0].set_ylabel(item.stem, fontsize=8)
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.01, top=0.95, wspace=0.04, hspace=0.06)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    click.echo(f"wrote {out} (bright = blurred)")


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--seed", default=0, show_default=True)
def camera(out, seed):
    """The blur models of `generate` (line vs shake, Gaussian vs disk) and the effect of
    --linear-light on highlights, from the embedded sample (CC0 photographs)."""
    from dataclasses import replace

    from blursynth.generate import default_voc_root, record_kernels, rerender, scan
    from blursynth.sampling import SampleParams, sample_record
    from blursynth.sources.voc import VOCSegmentation

    voc = VOCSegmentation(default_voc_root(), "train")
    items, _ = scan(voc, quiet=True)
    params = SampleParams(motion_kernel="shake", defocus_kernel="disk")
    # the first defocus sample over the starfield: point highlights, the clearest case
    index = next(
        i
        for i in range(200)
        if sample_record(items, "defocus", i, seed, params).bg == "skimage_hubble_deep_field"
    )
    disk = sample_record(items, "defocus", index, seed, params)
    plain = sample_record(items, "defocus", index, seed)
    kernels = [
        ("line (report)", record_kernels(sample_record(items, "motion", 0, seed))[0]),
        *[
            (f"shake {i + 1}", record_kernels(sample_record(items, "motion", i, seed, params))[0])
            for i in range(3)
        ],
        ("Gaussian (report)", record_kernels(plain)[0]),
        ("disk", record_kernels(disk)[0]),
    ]
    images = [
        ("Gaussian k1, sRGB (report)", rerender(plain, voc)["image"]),
        ("disk k1, sRGB", rerender(disk, voc)["image"]),
        ("disk k1, --linear-light", rerender(replace(disk, linear_light=True), voc)["image"]),
    ]
    fig = Figure(figsize=(12, 7.2), dpi=100)
    for i, (name, k) in enumerate(kernels):
        ax = fig.add_subplot(3, 6, i + 1)
        size = 17  # every kernel on the same 17 x 17 grid, so sizes compare
        canvas = np.zeros((size, size))
        r0, c0 = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
        canvas[r0 : r0 + k.shape[0], c0 : c0 + k.shape[1]] = k
        ax.imshow(canvas, cmap="magma", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    # zoom on the background only (the stars): the 64 x 80 box, wholly background, that
    # holds the most bright light in the report's rendering
    background = rerender(disk, voc)["gt"] > 0
    light = images[0][1].max(axis=2).astype(float) * background
    best, box = -1.0, None
    for y in range(0, light.shape[0] - 64, 4):
        for x in range(0, light.shape[1] - 80, 4):
            if background[y : y + 64, x : x + 80].all():
                score = np.sort(light[y : y + 64, x : x + 80].ravel())[-100:].sum()
                if score > best:
                    best, box = score, (slice(y, y + 64), slice(x, x + 80))
    if box is None:
        raise click.ClickException("no 64 x 80 box of pure background in this sample")
    for i, (name, image) in enumerate(images):
        ax = fig.add_subplot(3, 3, 4 + i)
        ax.imshow(image)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(3, 3, 7 + i)
        ax.imshow(image[box], interpolation="nearest")
        bright = np.sort(image[box].max(axis=2).ravel())[-50:].mean()
        ax.set_title(f"stars, zoomed: 50 brightest px mean {bright:.0f}/255", fontsize=9)
        ax.axis("off")
    fig.suptitle(
        "blursynth generate: kernels (17 x 17 px), and a defocused starfield composited in "
        "sRGB values vs in linear light",
        fontsize=11,
    )
    fig.tight_layout()
    with atomic_path(out) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
