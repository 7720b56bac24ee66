"""``blursynth generate``: the blur models' renderings with their truth, from the command
line (:func:`blursynth.generate.generate`)."""

from __future__ import annotations

import click

from blursynth.cli_common import backend_options, domain_errors, quiet_option, range_option
from blursynth.imageio import PNG_FILTERS, PNG_STRATEGIES
from blursynth.sampling import (
    BACKGROUNDS,
    DEFOCUS_KERNELS,
    MODELS,
    MOTION_KERNELS,
    SHARP_BACKGROUND_SCOPES,
)
from blursynth.sources.objects import OBJECT_POLARITIES
from blursynth.sources.voc import SPLITS as VOC_SPLITS


@click.command()
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
    "--png-strategy",
    type=click.Choice(list(PNG_STRATEGIES)),
    default=None,
    help="zlib strategy of the PNGs: the same pixels with each; rle is the fastest at level 1 "
    "for photographs [default: rle; on --resume, the run's own].",
)
@click.option(
    "--png-filter",
    type=click.Choice(PNG_FILTERS),
    default=None,
    help="PNG row filter: the same pixels with each; adaptive is Pillow's per-row choice "
    "(the encoding before this option), the others one libpng filter per image, auto being "
    "Paeth for colour and Up for grey [default: auto; on --resume, the run's own].",
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
    **options,
):
    """Render synthetic motion/defocus images with CUHK-style ground truth into OUT.

    Writes image/, gt/ (255 = blurred), soft/, records.jsonl and report.json. The defaults
    are the report's two models; the kernel and camera options make them closer to real
    cameras, and each record keeps what was drawn (`rerender` gives the same bytes).
    """
    from blursynth.generate import generate as run_generate

    png = {key: options.pop(key) for key in ("png_level", "png_strategy", "png_filter")}
    params = _sample_params(**options)  # the rest: the camera and sampling options
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
        **png,
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
