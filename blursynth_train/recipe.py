"""The training recipe: :class:`FitConfig`, what a run depends on, and how ``--resume``
restores it (:func:`resume_config`).

A :class:`Recipe` (frozen) is what shapes the weights; it comes back whole from ``last.pt``
on ``--resume``, which refuses an explicit option that differs from it (but
:data:`RESUME_MAY_CHANGE`).
A :class:`FitConfig` is a recipe with the data it trains on and where and how it runs
(device, workers, output, logging): those take their defaults on ``--resume`` unless given
again.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from blursynth.errors import BlursynthError
from blursynth_train.choices import (
    DEVICES,
    LOSSES,
    LR_SCHEDULES,
    MODEL_KINDS,
    ON_DEVICE,
    OPTIMIZERS,
    SELECT_BY,
)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """What shapes the weights: saved in every checkpoint, restored whole on ``--resume``
    (:func:`resume_config`), and checked against the model family when made.

    Parameters
    ----------
    val_dataset : path, optional
        Validate on this dataset's ``val`` split instead (same kind, row size and classes):
        e.g. real images to choose ``best.pt`` of a model trained on renderings alone, where
        the renderings' own val split keeps improving while real images get worse.
    model : str
        Model family (:func:`blursynth_train.models.model_kinds`); it fixes the dataset kind.
    batch_size, lr, momentum, weight_decay, iterations
        The SGD recipe; defaults are the report's.
    lr_schedule : {"constant", "cosine", "step"}
        ``cosine`` decays to 0 at ``iterations``; ``step`` multiplies by 0.1 at 50 % and 75 %.
    optimizer : {"sgd", "adamw"}
        ``sgd`` (the report's) uses ``momentum``; ``adamw`` (Loshchilov & Hutter) uses the
        default betas and ``weight_decay`` as decoupled decay.
    init : path or name, optional
        Start from the weights of this checkpoint (``fit`` or ``export`` output, or a name of
        shipped weights: ``bundled``, ``report``) instead of a random initialisation; the
        optimizer starts fresh.
    seed : int
        Weights, dropout, batch order and augmentation.
    eval_every : int
        Iterations between evaluations (log row, plot, ``last.pt``, maybe ``best.pt``).
    val_rows : int
        Validate on the first ``val_rows`` rows (0: the whole split).
    select_by : {"accuracy", "miou"}
        The validation number that picks ``best.pt``: the share of labelled pixels (patches)
        classified right, or the mean over classes of the IoU pooled over all validation
        pixels (the segmentation metric, which a large class cannot dominate). Both are
        logged either way.
    loss : {"ce", "ce+dice"}
        The training loss: cross-entropy, or cross-entropy plus the soft Dice loss (one minus
        the mean over classes of the soft Dice coefficient over the batch's labelled pixels),
        which weighs each class alike whatever its share of pixels. Validation loss is
        cross-entropy either way.
    class_weights : tuple of float, optional
        One weight per class for the cross-entropy (e.g. more weight to motion, the rare
        class of 3-class CUHK tiles); none: all 1.
    ema : float
        Keep an exponential moving average of the weights with this decay per step (e.g.
        0.999, reached after a warm-up: :func:`ema_decay`; 0: off) and validate, choose and
        ship it (``model_state`` of every
        checkpoint); the trained weights ride along for ``--resume``. Averaging weights
        along the trajectory finds flatter minima, which carry better to data unlike the
        training data (Izmailov et al. 2018; Cha et al. 2021).
    augment : bool
        Random flips and 90-degree rotations of each row.
    photometric : bool
        Random gamma, gain, contrast and saturation of each row
        (:func:`blursynth_train.data.photometric`).
    encoder, pretrained, freeze_blocks, context, decoder_kind, refine : optional
        Options of the ``liteunet`` family (its encoder ``lite0|lite1|lite2``, whether it
        starts from ImageNet weights, how many of its first blocks stay frozen, whether a
        pyramid pooling module gives the decoder the whole image's context, a U-Net or an
        FPN decoder, whether a refinement stage works at the input's resolution); None: the
        family's default. Refused for families that do not take them.
    crop : int
        Train dense models on a random ``crop`` x ``crop`` window of each batch (0: whole
        tiles); a cheaper step, the same context per pixel up to the crop.
    bf16 : bool
        bfloat16 autocast for the forward pass.
    """

    model: str = "blurnet"
    batch_size: int = 64
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    iterations: int = 1_000_000
    lr_schedule: str = "constant"
    optimizer: str = "sgd"
    init: str | None = None
    seed: int = 0
    eval_every: int = 10_000
    val_rows: int = 0
    val_dataset: str | None = None
    select_by: str = "accuracy"
    loss: str = "ce"
    class_weights: tuple[float, ...] | None = None
    ema: float = 0.0
    augment: bool = False
    photometric: bool = False
    crop: int = 0
    encoder: str | None = None
    pretrained: str | None = None
    freeze_blocks: int | None = None
    context: str | None = None
    decoder_kind: str | None = None
    refine: str | None = None
    bf16: bool = False

    def __post_init__(self):
        for name in ("init", "val_dataset"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(getattr(self, name)))
        if self.class_weights is not None:
            weights = tuple(float(w) for w in self.class_weights) or None
            object.__setattr__(self, "class_weights", weights)
        self._check_numbers()
        self._check_choices()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The recipe's fields (what ``--resume`` restores)."""
        return tuple(f.name for f in fields(Recipe))

    def recipe(self) -> Recipe:
        """The recipe alone (of a :class:`FitConfig`: without where and how it runs)."""
        return Recipe(**{name: getattr(self, name) for name in Recipe.names()})

    def _check_numbers(self) -> None:
        for name in ("batch_size", "iterations", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "momentum", "weight_decay", "ema"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.seed < 0:  # SeedSequence (batch order) takes no negative entropy
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.val_rows < 0:
            raise ValueError(f"val_rows must be >= 0, got {self.val_rows}")
        if self.class_weights and not all(w > 0 and math.isfinite(w) for w in self.class_weights):
            raise ValueError(f"class weights must be > 0, got {self.class_weights}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.freeze_blocks is not None and self.freeze_blocks < 0:
            raise ValueError(f"freeze_blocks must be >= 0, got {self.freeze_blocks}")

    def _check_choices(self) -> None:
        """Names from the choice lists; options only for families that take them."""
        for name, allowed in (
            ("model", MODEL_KINDS),
            ("lr_schedule", LR_SCHEDULES),
            ("optimizer", OPTIMIZERS),
            ("select_by", SELECT_BY),
            ("loss", LOSSES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        from blursynth_train.models import get_family

        family = get_family(self.model)
        foreign = [n for n in FAMILY_OPTIONS if getattr(self, n) is not None]
        foreign = [n for n in foreign if n not in family.options]
        if self.crop and not family.dense:  # a patch model's labels are centre pixels
            foreign.append("crop")
        if foreign:
            names = ", ".join("--" + n.replace("_", "-") for n in foreign)
            raise ValueError(f"{names}: not an option of the {self.model} family")

    def family_options(self) -> dict:
        """The family's own options that were given (the rest take the family's defaults)."""
        return {n: getattr(self, n) for n in FAMILY_OPTIONS if getattr(self, n) is not None}


@dataclass(frozen=True, kw_only=True)
class FitConfig(Recipe):
    """A training run: its :class:`Recipe` (every field of it, flat), the data it trains on,
    and where and how it runs (stored in ``config.json`` and checkpoints).

    Parameters
    ----------
    datasets : path or list of paths
        Dataset folder(s) (``manifest.json`` with ``train`` and ``val`` splits). With several,
        training rows come from all of them, interleaved in proportion to their sizes
        (:class:`blursynth.shards.MixedSplit`); validation uses the first one's ``val`` split
        unless ``val_dataset`` is given.
    out : path
        Run folder.
    device : {"auto", "cpu", "cuda"}
        ``auto`` takes CUDA when available.
    workers : int
        DataLoader processes for the streamed path.
    data_on_device : {"auto", "yes", "no"}
        Hold the training split in device memory (RAM on CPU); ``auto`` does when it fits in
        half of the free memory.
    compile : bool
        ``torch.compile`` the model for the training step.
    deterministic : bool
        Deterministic CUDA kernels (see module docstring).
    tensorboard : bool
        Also write TensorBoard scalars to ``out/tb`` (skipped when not installed).
    verify : bool
        Hash every shard before training and refuse one whose bytes differ from its
        manifest's sha256 (:func:`blursynth_train.data.check_digests`).
    resume : bool
        Continue from ``out/last.pt``.
    force : bool
        Resume on a different dataset, or start over in a run folder that holds a run.
    dry_run : bool
        A few iterations, one evaluation on at most 512 validation rows, all outputs.
    quiet : bool
        No progress output.
    **recipe
        The :class:`Recipe`'s fields.
    """

    datasets: str | list[str]
    out: str
    device: str = "auto"
    workers: int = 2
    data_on_device: str = "auto"
    compile: bool = False
    deterministic: bool = False
    tensorboard: bool = False
    verify: bool = True
    resume: bool = False
    force: bool = False
    dry_run: bool = False
    quiet: bool = False

    def __post_init__(self):
        datasets = self.datasets
        if isinstance(datasets, list | tuple):
            if not datasets:
                raise ValueError("give at least one dataset folder")
            datasets = [str(p) for p in datasets]
            datasets = datasets[0] if len(datasets) == 1 else datasets
        object.__setattr__(
            self, "datasets", datasets if isinstance(datasets, list) else str(datasets)
        )
        object.__setattr__(self, "out", str(self.out))
        super().__post_init__()
        for name, allowed in (("device", DEVICES), ("data_on_device", ON_DEVICE)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        cpus = os.cpu_count() or 1
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.workers > max(cpus, 2):
            raise ValueError(
                f"workers must be at most the {cpus} CPUs of this machine (each is a process "
                f"with its own memory; more only queue for the CPUs), got {self.workers}"
            )

    def dataset_paths(self) -> list[str]:
        """The dataset folder(s), as a list."""
        return [self.datasets] if isinstance(self.datasets, str) else list(self.datasets)


FAMILY_OPTIONS = ("encoder", "pretrained", "freeze_blocks", "context", "decoder_kind", "refine")
"""Recipe fields that only some model families take (:attr:`ModelFamily.options`)."""

RESUME_MAY_CHANGE = ("iterations", "eval_every", "val_dataset")
"""Recipe fields a ``--resume`` may set anew: ``iterations``, to train a finished run for
longer; ``eval_every``, how often it looks (the steps are the same); ``val_dataset``, a
path, whose data is checked by its manifest's hash (as the training datasets' are: a moved
folder resumes, other data needs ``--force``)."""


def resume_config(out: str | Path, **given) -> FitConfig:
    """The configuration to resume ``out/last.pt``: its recipe, and ``given``.

    Parameters
    ----------
    out : path
        Run folder.
    **given
        :class:`FitConfig` fields set explicitly: where and how the run goes on (device,
        workers, ...; the others take their defaults), the data (checked against the run's
        unless ``force``), and :data:`RESUME_MAY_CHANGE`. Another recipe field that differs
        from the run's is refused, naming it: a resumed run keeps its recipe.
    """
    if not (Path(out) / "last.pt").is_file():
        raise BlursynthError(
            "nothing to resume: no last.pt (the run stopped before its first checkpoint, or "
            "never started); run the same command without --resume",
            out,
        )
    from blursynth_train.checkpoint import load_checkpoint  # torch: only when resuming

    saved = dict(load_checkpoint(Path(out) / "last.pt")["train_config"])
    if "shards" in saved:  # runs written before the field was called ``datasets``
        saved.setdefault("datasets", saved.pop("shards"))
    recipe = Recipe(**{k: saved[k] for k in Recipe.names() if k in saved})
    asked = {k: v for k, v in given.items() if k in Recipe.names()}
    wanted = replace(recipe, **asked)  # checked and normalised as the recipe is
    differ = [
        f"--{k.replace('_', '-')} {getattr(wanted, k)} (the run's: {getattr(recipe, k)})"
        for k in sorted(asked)
        if k not in RESUME_MAY_CHANGE and getattr(wanted, k) != getattr(recipe, k)
    ]
    if differ:
        raise ValueError(
            f"a resumed run keeps its recipe: {', '.join(differ)}; resume without them, or "
            "train with them into a new --out"
        )
    runtime = {k: v for k, v in given.items() if k not in Recipe.names()}
    runtime.setdefault("datasets", saved["datasets"])
    runtime.update(out=str(out), resume=True)
    return FitConfig(**{k: getattr(wanted, k) for k in Recipe.names()}, **runtime)
