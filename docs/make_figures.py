"""Figures for docs/results.md.

    python docs/make_figures.py curves --out docs/curves.png NAME=RUN_DIR ...
    python docs/make_figures.py qualitative --source synth --root DIR \
        [--model NAME=PATH ...] --out docs/qualitative-dense.png [--n 4]

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
from blursynth_train.segment import load_segmenter


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
    from blursynth_train.segment import model_maps
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


if __name__ == "__main__":
    sys.exit(main())
