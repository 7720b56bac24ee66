"""``blursynth``: thin click commands. Each parses, calls one library function, reports.

Domain errors (:class:`blursynth.BlursynthError`) become one-line ``click.ClickException``
messages; tracebacks are for bugs only.
"""

from __future__ import annotations

import functools
import os

import click

from blursynth import __version__
from blursynth.errors import BlursynthError, os_reason
from blursynth.parallel import BACKENDS
from blursynth.sampling import (
    BACKGROUNDS,
    DEFOCUS_KERNELS,
    MODELS,
    MOTION_KERNELS,
    SHARP_BACKGROUND_SCOPES,
)
from blursynth.schema import FORMATS, KNOWN_BLUR_TYPES, POLARITIES, SOURCE_KINDS
from blursynth.sources.objects import OBJECT_POLARITIES
from blursynth.sources.voc import SPLITS as VOC_SPLITS


def domain_errors(fn):
    """Turn :class:`BlursynthError`, and the OSError of an unwritable or full output, into a
    one-line CLI error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BlursynthError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # unwritable, full or missing output: name the path, one line
            raise click.ClickException(os_error_message(exc)) from None
        except KeyboardInterrupt:  # Ctrl-C: say how to finish, not only "Aborted!"
            ctx = click.get_current_context(silent=True)
            how = RESUME_HINTS.get(ctx.info_name if ctx else "", "run the same command again")
            click.echo(f"\nInterrupted: {how} to finish; nothing written is lost.", err=True)
            raise SystemExit(130) from None

    return wrapper


RESUME_HINTS = {
    "generate": "run the same command with --resume",
    "patches": "run the same command again (finished shards are reused)",
    "tiles": "run the same command again",
}
"""What finishes an interrupted command (``domain_errors``' Ctrl-C message)."""


def os_error_message(exc: OSError) -> str:
    """``PATH: the disk is full: No space left on device`` from an OSError, in one line (a
    write that names no file is caught where the file is known: ``imageio.atomic_path``)."""
    where = exc.filename if exc.filename is not None else "output"
    return f"{where}: {os_reason(exc)}"


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
force_option = click.option(
    "--force",
    is_flag=True,
    help="Replace a finished dataset of another kind or other settings in --out, or build "
    "into a folder holding other files.",
)


def backend_options(fn):
    """``--backend local|dask`` and ``--scheduler ADDRESS``, passed on as ``backend``: a
    :class:`blursynth.parallel.Backend` (its checks give the one-line errors)."""

    @click.option(
        "--backend",
        "backend_name",
        type=click.Choice(BACKENDS),
        default="local",
        show_default=True,
        help="Where workers run: local processes, or a dask.distributed cluster (the output "
        "is the same bytes; needs blursynth[cluster]).",
    )
    @click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="--backend dask: the scheduler's address, e.g. tcp://10.0.0.5:8786. Workers "
        "must see the source and --out folders at the same paths.",
    )
    @functools.wraps(fn)
    def wrapper(*args, backend_name, scheduler, **kwargs):
        from blursynth.parallel import Backend

        try:
            backend = Backend(backend_name, scheduler)
        except BlursynthError as exc:
            raise click.UsageError(str(exc)) from None
        return fn(*args, backend=backend, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blursynth")
def main():
    """Synthetic blur data, patch datasets and their checks."""


def range_option(flag: str, help: str):
    """An option that takes a range, ``FLAG LO HI`` (two floats; None when not given)."""
    return click.option(flag, type=(float, float), default=None, metavar="LO HI", help=help)


# --- generate (issue 2) -------------------------------------------------------------------


@main.command()
@click.option(
    "--voc",
    type=click.Path(exists=True, file_okay=False),
    help="VOCdevkit, VOC2012 or a folder holding VOCdevkit [default: embedded sample].",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=1),
    required=True,
    help=f"Images per model: --model both writes 2 x N images, all {len(MODELS)} x N.",
)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--model",
    type=click.Choice([*MODELS, "both", "all"]),
    default="both",
    show_default=True,
    help="Blur model(s): eq. (1) motion, eq. (2) defocus, mixed (a sharp and a moving "
    "object over a defocused background, with a classes/ map), pan (a panning shot: a sharp "
    "object over a background streaked by the motion kernel); both = motion + defocus, "
    "all = every model.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Root seed.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; the output does not depend on it.",
)
@click.option("--resume", is_flag=True, help="Complete an interrupted run in --out.")
@click.option(
    "--png-level",
    type=click.IntRange(0, 9),
    default=None,
    help="zlib level of the PNGs: the same pixels at every level, smaller and slower as it "
    "rises [default: 1; on --resume, the run's own].",
)
@click.option(
    "--split",
    type=click.Choice(VOC_SPLITS),
    default="train",
    show_default=True,
    help="VOC segmentation split to draw images from.",
)
@click.option(
    "--objects",
    "objects",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="A folder of photographs with object masks (image/ + mask/, 255 = object: ECSSD, "
    "DUTS, a COCO export) to draw foregrounds and backgrounds from; repeatable. Without "
    "--voc, only these.",
)
@click.option(
    "--object-threshold",
    type=click.IntRange(1, 255),
    default=128,
    show_default=True,
    help="--objects: mask grey levels >= this are white (soft masks).",
)
@click.option(
    "--object-polarity",
    type=click.Choice(OBJECT_POLARITIES),
    default="object-white",
    show_default=True,
    help="--objects: what white means in a mask.",
)
@click.option(
    "--motion-kernel",
    type=click.Choice(MOTION_KERNELS),
    default="line",
    show_default=True,
    help="line: the report's straight motion; shake: a random camera trajectory of the same "
    "length range (5-15 px).",
)
@click.option(
    "--defocus-kernel",
    type=click.Choice(DEFOCUS_KERNELS),
    default="gaussian",
    show_default=True,
    help="gaussian: the report's k1 (sigma 1-2 px); disk: a lens-like circle of confusion "
    "(radius 2-4 px).",
)
@range_option(
    "--motion-length",
    "Range of the motion blur's length in pixels (the line, or the shake path; motion, "
    "pan and mixed images), uniform. Blur extent scales with resolution: widen it for "
    "large photographs.  [default: 5 15, the report's]",
)
@range_option(
    "--defocus-sigma",
    "Range of the Gaussian defocus kernel k1's sigma in pixels, uniform.  "
    "[default: 1 2, the report's]",
)
@range_option(
    "--disk-radius",
    "--defocus-kernel disk: range of the disk's radius in pixels, uniform.  [default: 2 4]",
)
@click.option(
    "--linear-light", is_flag=True, help="Blur and composite in linear light, not sRGB values."
)
@click.option(
    "--noise", is_flag=True, help="Poisson-Gaussian sensor noise after the blur (linear light)."
)
@range_option(
    "--noise-shot",
    "--noise: range of the shot-noise factor a (log-uniform; variance a*x in linear "
    "light).  [default: 1e-4 1e-2]",
)
@range_option(
    "--noise-read",
    "--noise: range of the read-noise variance b (log-uniform).  [default: 1e-6 1e-4]",
)
@click.option(
    "--uniform-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of images with no object: sharp everywhere or blurred everywhere (half "
    "each), so that a model does not learn to always split an image in two.",
)
@click.option(
    "--background",
    type=click.Choice(BACKGROUNDS),
    default="other",
    show_default=True,
    help="other: the report's composite (the object pasted over a crop of another "
    "photograph); own: the object stays in its own photograph, what lies behind it filled "
    "in from around it (no pasted edge, one light).",
)
@click.option(
    "--min-background-sharpness",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    metavar="S",
    help="Only photographs whose background is at least this sharp (the median Yi & Eramian "
    "LBP sharpness off the object, 0-1) serve as backgrounds: saliency photographs often "
    "have an out-of-focus background, which a composite would call sharp. 0: all.",
)
@click.option(
    "--sharp-background-for",
    type=click.Choice(SHARP_BACKGROUND_SCOPES),
    default="every",
    show_default=True,
    help="Which renderings --min-background-sharpness filters: every one, or only those "
    "whose truth calls the background sharp (motion images, sharp uniform images); defocus, "
    "pan and mixed images blur their background anyway and keep every photograph.",
)
@click.option(
    "--jpeg",
    type=click.IntRange(1, 100),
    default=None,
    metavar="QUALITY",
    help="Finish with a JPEG round trip at this quality (images stay PNG files).",
)
@backend_options
@quiet_option
@domain_errors
def generate(
    voc,
    n,
    out,
    model,
    seed,
    jobs,
    resume,
    split,
    objects,
    object_threshold,
    object_polarity,
    quiet,
    backend,
    png_level,
    **camera,
):
    """Render synthetic motion/defocus images with CUHK-style ground truth into OUT.

    Writes image/, gt/ (255 = blurred), soft/, records.jsonl and report.json. The defaults
    are the report's two models; the kernel and camera options make them closer to real
    cameras, and each record keeps what was drawn (`rerender` gives the same bytes).
    """
    from blursynth.generate import generate as run_generate

    params = _sample_params(**camera)
    report = run_generate(
        out,
        n=n,
        voc=voc,
        model=model,
        seed=seed,
        split=split,
        jobs=jobs,
        resume=resume,
        quiet=quiet,
        params=params,
        backend=backend,
        objects=objects,
        object_threshold=object_threshold,
        object_polarity=object_polarity,
        png_level=png_level,
    )
    for line in report.lines():
        click.echo(line, err=True)
    click.echo(
        f"{report.complete} of {report.requested} images ({n} per model) in {out} "
        f"({report.written} new, "
        f"{len(report.skipped_items)} source items skipped, {len(report.redrawn)} redrawn, "
        f"{len(report.failed)} failed)"
    )
    if report.failed:  # --n is not met: say so with the exit status, not only in a file
        first = report.failed[0]
        raise click.ClickException(
            f"{len(report.failed)} sample(s) failed (first: {first['file']}: {first['reason']});"
            f" the others are written; every failure is in {out}/report.json"
        )


def _sample_params(
    motion_kernel,
    defocus_kernel,
    motion_length,
    defocus_sigma,
    disk_radius,
    linear_light,
    noise,
    noise_shot,
    noise_read,
    uniform_share,
    background,
    min_background_sharpness,
    sharp_background_for,
    jpeg,
):
    """``generate``'s kernel and camera options as :class:`SampleParams`; options that need
    another one, and bad ranges, are usage errors."""
    from blursynth.sampling import SampleParams

    if (noise_shot or noise_read) and not noise:
        raise click.UsageError("--noise-shot and --noise-read set the ranges of --noise; add it")
    if disk_radius and defocus_kernel != "disk":
        raise click.UsageError("--disk-radius sets the range of --defocus-kernel disk; add it")
    if defocus_sigma and defocus_kernel == "disk":
        raise click.UsageError("--defocus-sigma is the Gaussian's; the disk takes --disk-radius")
    if sharp_background_for != "every" and not min_background_sharpness:
        raise click.UsageError(
            "--sharp-background-for says where --min-background-sharpness applies; add it"
        )
    ranges = {
        name: tuple(value)
        for name, value in (
            ("noise_a", noise_shot),
            ("noise_b", noise_read),
            ("length", motion_length),
            ("sigma1", defocus_sigma),
            ("radius", disk_radius),
        )
        if value is not None
    }
    try:
        return SampleParams(
            motion_kernel=motion_kernel,
            defocus_kernel=defocus_kernel,
            linear_light=linear_light,
            noise=noise,
            jpeg=jpeg,
            uniform_share=uniform_share,
            background=background,
            min_background_sharpness=min_background_sharpness,
            sharp_background_for=sharp_background_for,
            **ranges,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


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


def _echo_build(report, unit: str, extra: str = "") -> None:
    """What a dataset build did: skipped images and warnings (stderr), then the sizes."""
    for stem, why in report.skipped:
        click.echo(f"skipped {stem}: {why}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    sizes = ", ".join(f"{k} {v:,}" for k, v in report.rows.items())
    click.echo(f"{report.path}: {sizes} {unit}; {len(report.skipped)} image(s) skipped{extra}")


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
    reused = f", {report.reused_shards} shard(s) reused" if report.reused_shards else ""
    _echo_build(report, "patches", reused)


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
    """Counts table, shapes and parameters of a patch dataset."""
    from blursynth.shards import dataset_info

    click.echo(dataset_info(dataset))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@quiet_option
@domain_errors
def verify(dataset, quiet):
    """Check a patch dataset's checksums and schema (non-zero exit on any mismatch)."""
    from blursynth.shards import verify_dataset

    verify_dataset(dataset, quiet=quiet).close()
    click.echo(f"{dataset}: OK")


# --- preview (generate output or patch dataset) -------------------------------------------


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
        from blursynth import patch_preview
        from blursynth.schema import dataset_kind

        kind = dataset_kind(folder)
        (patch_preview.tile_grid if kind == "tiles" else patch_preview.patch_grid)(folder, out)
    else:
        from blursynth.preview import contact_sheet

        skipped = []
        contact_sheet(folder, out, rows=rows, skipped=skipped)
        for exc in skipped:
            click.echo(f"left out of the sheet: {exc}", err=True)
    click.echo(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
