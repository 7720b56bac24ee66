"""``blursynth``: thin click commands. Each parses, calls one library function, reports.

Domain errors (:class:`blursynth.BlursynthError`) become one-line ``click.ClickException``
messages (:mod:`blursynth.cli_common`); tracebacks are for bugs only. ``generate`` lives in
:mod:`blursynth.cli_generate`.
"""

from __future__ import annotations

import os

import click

from blursynth import __version__
from blursynth.cli_common import (
    backend_options,
    domain_errors,
    force_option,
    quiet_option,
)
from blursynth.cli_generate import generate
from blursynth.schema import FORMATS, KNOWN_BLUR_TYPES, POLARITIES, SOURCE_KINDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blursynth")
def main():
    """Synthetic blur data, datasets of patches and tiles, and their checks."""


main.add_command(generate)


def _build_scaled(build, params, out, jobs, quiet, backend, force):
    """``build(params, out, ...)``; with the default ``--eval-images`` on a source too small
    for it, the most the source allows instead, said in a warning (an explicit value that
    does not fit is still an error)."""
    from dataclasses import replace

    from blursynth.patch_plan import TooManyEvalImages

    default = click.get_current_context().get_parameter_source("eval_images")
    while True:  # ends: every retry lowers eval_images
        try:
            return build(params, out, jobs=jobs, quiet=quiet, backend=backend, force=force)
        except TooManyEvalImages as exc:
            if default is not click.core.ParameterSource.DEFAULT or exc.most >= params.eval_images:
                raise
            click.echo(
                f"warning: the default --eval-images {params.eval_images} leaves too few "
                f"images to train on ({exc.reason.split(':')[0]}); holding out {exc.most}",
                err=True,
            )
            params = replace(params, eval_images=exc.most)


def _echo_build(report, unit: str) -> None:
    """What a dataset build did: skipped images and warnings (stderr), then the sizes."""
    for stem, why in report.skipped:
        click.echo(f"skipped {stem}: {why}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    sizes = ", ".join(f"{k} {v:,}" for k, v in report.rows.items())
    reused = f", {report.reused_shards} shard(s) reused" if report.reused_shards else ""
    click.echo(f"{report.path}: {sizes} {unit}; {len(report.skipped)} image(s) skipped{reused}")


# options shared by the dataset builders (patches, tiles)
_source_option = click.option(
    "--source",
    "source_kind",
    required=True,
    type=click.Choice(SOURCE_KINDS),
    help="shi: CUHK layout; synth: `blursynth generate` output; folder: image/+gt/.",
)
_root_option = click.option(
    "--root",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Source folder (holds image/ and gt/).",
)
_seed_option = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
_jobs_option = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Parallel workers (the output does not depend on it).",
)
_polarity_option = click.option(
    "--polarity",
    type=click.Choice(POLARITIES),
    default=None,
    help="folder source: what white means in a mask (DUT: sharp-white).",
)
_threshold_option = click.option(
    "--threshold",
    type=click.IntRange(1, 255),
    default=None,
    help="folder source: grey levels >= this are white.",
)
_blur_type_option = click.option(
    "--blur-type",
    type=click.Choice(KNOWN_BLUR_TYPES),
    default=None,
    help="folder source: blur type of every image (otherwise unknown).",
)
_only_option = click.option(
    "--only",
    type=click.Choice(KNOWN_BLUR_TYPES),
    default=None,
    help="Train/val from this blur type only; the image split (and the held-out "
    "eval images) stay those of the full dataset.",
)


# --- patches / info / verify (issue 3) ----------------------------------------------------


@main.command()
@_source_option
@_root_option
@_seed_option
@_jobs_option
@_polarity_option
@_threshold_option
@_blur_type_option
@_only_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset folder to write (rerun to finish an interrupted build).",
)
@click.option(
    "--train-patches",
    type=click.IntRange(min=0),
    default=1_000_000,
    show_default=True,
    help="Training patches.",
)
@click.option(
    "--val-patches",
    type=click.IntRange(min=0),
    default=None,
    help="Validation patches [default: train/4].",
)
@click.option(
    "--per-image",
    type=click.IntRange(min=1),
    default=None,
    help="Patches from every train/val image instead of split totals.",
)
@click.option(
    "--eval-images",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Whole images held out for dense evaluation (half motion, half defocus).",
)
@click.option("--patch-size", type=int, default=31, show_default=True, help="Odd.")
@click.option("--rows-per-shard", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="hdf5",
    show_default=True,
    help="caffe: float32 data/label for Caffe/Mocha HDF5 layers.",
)
@backend_options
@force_option
@quiet_option
@domain_errors
def patches(
    source_kind,
    root,
    out,
    train_patches,
    val_patches,
    per_image,
    eval_images,
    patch_size,
    seed,
    jobs,
    rows_per_shard,
    fmt,
    polarity,
    threshold,
    blur_type,
    only,
    quiet,
    backend,
    force,
):
    """Sample balanced PATCH-SIZE patches into sharded HDF5 (train/val + eval list)."""

    from blursynth.patches import build_patch_dataset
    from blursynth.schema import PatchParams

    params = PatchParams(
        source=source_kind,
        root=os.path.abspath(root),
        polarity=polarity,
        threshold=threshold,
        blur_type=blur_type,
        patch_size=patch_size,
        seed=seed,
        train_patches=train_patches,
        val_patches=val_patches,
        per_image=per_image,
        eval_images=eval_images,
        only=only,
        rows_per_shard=rows_per_shard,
        format=fmt,
    )
    report = _build_scaled(build_patch_dataset, params, out, jobs, quiet, backend, force)
    _echo_build(report, "patches")


@main.command()
@_source_option
@_root_option
@_seed_option
@_jobs_option
@_polarity_option
@_threshold_option
@_blur_type_option
@_only_option
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Dataset folder to write."
)
@click.option("--tile-size", type=click.IntRange(min=32), default=256, show_default=True)
@click.option(
    "--classes",
    type=click.Choice(["2", "3"]),
    default="2",
    show_default=True,
    help="2: sharp/blurred; 3: sharp/motion/defocus (blur type of the source image).",
)
@click.option(
    "--eval-images",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Whole images held out (the same as `patches` with the same source and seed).",
)
@click.option(
    "--jitter/--no-jitter",
    default=True,
    show_default=True,
    help="Random inner positions of the covering grid (coverage kept).",
)
@click.option(
    "--tiles-per-image",
    type=click.IntRange(min=1),
    default=None,
    help="At least N tiles per image: the covering grid, then random tiles.",
)
@click.option("--rows-per-shard", type=click.IntRange(min=1), default=1000, show_default=True)
@backend_options
@force_option
@quiet_option
@domain_errors
def tiles(
    source_kind,
    root,
    out,
    tile_size,
    classes,
    eval_images,
    jitter,
    tiles_per_image,
    seed,
    jobs,
    rows_per_shard,
    polarity,
    threshold,
    blur_type,
    only,
    quiet,
    backend,
    force,
):
    """Cut whole images into TILE-SIZE tiles with label maps, in sharded HDF5."""

    from blursynth.schema import TileParams
    from blursynth.tiles import build_tile_dataset

    params = TileParams(
        source=source_kind,
        root=os.path.abspath(root),
        polarity=polarity,
        threshold=threshold,
        blur_type=blur_type,
        tile_size=tile_size,
        classes=int(classes),
        jitter=jitter,
        tiles_per_image=tiles_per_image,
        seed=seed,
        eval_images=eval_images,
        only=only,
        rows_per_shard=rows_per_shard,
    )
    report = _build_scaled(build_tile_dataset, params, out, jobs, quiet, backend, force)
    _echo_build(report, "tiles")


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@domain_errors
def info(dataset):
    """Counts table, shapes and parameters of a dataset (patches or tiles)."""
    from blursynth.shards import dataset_info

    click.echo(dataset_info(dataset))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@quiet_option
@domain_errors
def verify(dataset, quiet):
    """Check a dataset's checksums and schema, patches or tiles (non-zero exit on any
    mismatch)."""
    from blursynth.shards import verify_dataset

    verify_dataset(dataset, quiet=quiet).close()
    click.echo(f"{dataset}: OK")


# --- preview (generate output or dataset) ---------------------------------------------------


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="PNG to write (NAME.png)."
)
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Rows of a generate contact sheet.",
)
@domain_errors
def preview(folder, out, rows):
    """Contact sheet of a generate output FOLDER, a patch grid of a patch dataset, or tiles
    beside their label overlays of a tile dataset."""
    from pathlib import Path

    if Path(out).suffix.lower() != ".png":
        raise click.UsageError(f"--out {out}: the sheet is a PNG; name it NAME.png")
    if (Path(folder) / "manifest.json").is_file():
        from blursynth.kinds import get_kind
        from blursynth.schema import dataset_kind

        get_kind(dataset_kind(folder), folder).resolve("preview")(folder, out)
    else:
        from blursynth.preview import contact_sheet

        skipped = []
        contact_sheet(folder, out, rows=rows, skipped=skipped)
        for exc in skipped:
            click.echo(f"left out of the sheet: {exc}", err=True)
    click.echo(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
