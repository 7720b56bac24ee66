"""Train a model of any registered family on blursynth datasets: ``fit(FitConfig) -> FitResult``.

Reads top to bottom like nanoGPT's ``train.py``: :func:`fit` sets up the device, opens the
data, builds the model and optimizer, starts or resumes (:func:`start_or_resume`), runs the
loop (:func:`train_loop`: step; every ``eval_every`` iterations :func:`evaluate_and_log`),
then writes a summary. The loop's state is one dataclass, :class:`TrainState`, saved in every
checkpoint under ``extra["state"]``. The defaults are the report's recipe: SGD, batch 64,
learning rate 1e-4 (constant), momentum 0.9, weight decay 5e-4, 1,000,000 iterations.

Run folder::

    config.json   this configuration, the model's, the dataset's manifest hash
    log.csv       one row per evaluation (running training loss/accuracy, validation ...)
    curves.png    training and validation accuracy over iterations (the report's Figure 4)
    last.pt       latest state (each evaluation and on exit); ``--resume`` continues from it
    best.pt       the state with the best validation accuracy
    summary.json  final numbers (written when the run completes)

Reproducibility
---------------
The batch order is a pure function of ``(seed, iteration)`` (:mod:`blursynth_train.data`)
and checkpoints hold the RNG states (dropout, augmentation), so on CPU the same seed gives
bitwise-identical weights and ``--resume`` continues exactly as if never interrupted. On CUDA
the conv backward uses atomics and cuDNN picks algorithms by benchmark, so runs differ in the
last bits; ``deterministic=True`` turns on ``torch.use_deterministic_algorithms`` and turns off
``cudnn.benchmark`` (slower).
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from itertools import islice
from pathlib import Path

import click
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from blursynth.errors import BlursynthError
from blursynth.imageio import write_json, write_text
from blursynth.progress import progressbar
from blursynth_train.checkpoint import load_checkpoint, save_checkpoint
from blursynth_train.choices import (
    DEVICES,
    LOSSES,
    LR_SCHEDULES,
    MODEL_KINDS,
    ON_DEVICE,
    OPTIMIZERS,
    SELECT_BY,
)
from blursynth_train.data import (
    ResidentBatches,
    StreamedBatches,
    TrainingData,
    augment,
    eval_batches,
    load_split,
    memory_budget,
    open_training_data,
    photometric,
    random_crop,
)
from blursynth_train.device import resolve_device
from blursynth_train.models import create_model, get_family, parameter_groups
from blursynth_train.objectives import IGNORE, Validation, training_loss, validate
from blursynth_train.plots import plot_curves, read_log

DRY_RUN_ITERATIONS = 5
DRY_RUN_VAL_ROWS = 512
EVAL_BATCH_SIZE = 512
LOG_FIELDS = (
    "iteration",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_miou",
    "lr",
    "samples_per_s",
    "elapsed_s",
)


@dataclass
class FitConfig:
    """Everything a training run depends on (stored in ``config.json`` and checkpoints).

    Parameters
    ----------
    datasets : path or list of paths
        Dataset folder(s) (``manifest.json`` with ``train`` and ``val`` splits). With several,
        training rows come from all of them, interleaved in proportion to their sizes
        (:class:`blursynth.shards.MixedSplit`); validation uses the first one's ``val`` split
        unless ``val_dataset`` is given.
    val_dataset : path, optional
        Validate on this dataset's ``val`` split instead (same kind, row size and classes):
        e.g. real images to choose ``best.pt`` of a model trained on renderings alone, where
        the renderings' own val split keeps improving while real images get worse.
    out : path
        Run folder.
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
    device : {"auto", "cpu", "cuda"}
        ``auto`` takes CUDA when available.
    eval_every : int
        Iterations between evaluations (log row, plot, ``last.pt``, maybe ``best.pt``).
    val_rows : int
        Validate on the first ``val_rows`` rows (0: the whole split).
    select_by : {"accuracy", "miou"}
        The validation number that picks ``best.pt``: the share of labelled pixels (patches)
        classified right, or the mean over classes of the IoU pooled over all validation
        pixels (the segmentation metric, which a large class cannot dominate). Both are
        logged either way.
    workers : int
        DataLoader processes for the streamed path.
    data_on_device : {"auto", "yes", "no"}
        Hold the training split in device memory (RAM on CPU); ``auto`` does when it fits in
        half of the free memory.
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
    encoder, pretrained, freeze_blocks : optional
        Options of the ``liteunet`` family (its encoder ``lite0|lite1|lite2``, whether it
        starts from ImageNet weights, how many of its first blocks stay frozen); None: the
        family's default. Refused for families that do not take them.
    crop : int
        Train dense models on a random ``crop`` x ``crop`` window of each batch (0: whole
        tiles); a cheaper step, the same context per pixel up to the crop.
    bf16 : bool
        bfloat16 autocast for the forward pass.
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
    """

    datasets: str | list[str]
    out: str
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
    device: str = "auto"
    eval_every: int = 10_000
    val_rows: int = 0
    val_dataset: str | None = None
    workers: int = 2
    data_on_device: str = "auto"
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
    bf16: bool = False
    compile: bool = False
    deterministic: bool = False
    tensorboard: bool = False
    verify: bool = True
    resume: bool = False
    force: bool = False
    dry_run: bool = False
    quiet: bool = False

    def __post_init__(self):
        if isinstance(self.datasets, list | tuple):
            if not self.datasets:
                raise ValueError("give at least one dataset folder")
            self.datasets = [str(p) for p in self.datasets]
            if len(self.datasets) == 1:
                self.datasets = self.datasets[0]
        else:
            self.datasets = str(self.datasets)
        self.out = str(self.out)
        if self.init is not None:
            self.init = str(self.init)
        if self.val_dataset is not None:
            self.val_dataset = str(self.val_dataset)
        self._check_numbers()
        self._check_choices()

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
        if self.val_rows < 0 or self.workers < 0:
            raise ValueError(
                f"val_rows and workers must be >= 0, got {self.val_rows}, {self.workers}"
            )
        cpus = os.cpu_count() or 1
        if self.workers > max(cpus, 2):
            raise ValueError(
                f"workers must be at most the {cpus} CPUs of this machine (each is a process "
                f"with its own memory; more only queue for the CPUs), got {self.workers}"
            )
        if self.class_weights is not None:
            self.class_weights = tuple(float(w) for w in self.class_weights) or None
            if self.class_weights and not all(
                w > 0 and math.isfinite(w) for w in self.class_weights
            ):
                raise ValueError(f"class weights must be > 0, got {self.class_weights}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.freeze_blocks is not None and self.freeze_blocks < 0:
            raise ValueError(f"freeze_blocks must be >= 0, got {self.freeze_blocks}")

    def _check_choices(self) -> None:
        """Names from the choice lists, and family options only for families that take them."""
        for name, allowed in (
            ("model", MODEL_KINDS),
            ("lr_schedule", LR_SCHEDULES),
            ("optimizer", OPTIMIZERS),
            ("device", DEVICES),
            ("data_on_device", ON_DEVICE),
            ("select_by", SELECT_BY),
            ("loss", LOSSES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        from blursynth_train.models import get_family

        family = get_family(self.model)
        foreign = [n for n in FAMILY_OPTIONS if getattr(self, n) is not None]
        foreign = [n for n in foreign if n not in family.options]
        if foreign:
            names = ", ".join("--" + n.replace("_", "-") for n in foreign)
            raise ValueError(f"{names}: not an option of the {self.model} family")

    def family_options(self) -> dict:
        """The family's own options that were given (the rest take the family's defaults)."""
        return {n: getattr(self, n) for n in FAMILY_OPTIONS if getattr(self, n) is not None}

    def dataset_paths(self) -> list[str]:
        """The dataset folder(s), as a list."""
        return [self.datasets] if isinstance(self.datasets, str) else list(self.datasets)


FAMILY_OPTIONS = ("encoder", "pretrained", "freeze_blocks")
"""FitConfig fields that only some model families take (:attr:`ModelFamily.options`)."""

# Fields that define what is trained; on --resume they default to the saved run's values.
RECIPE_FIELDS = (
    *FAMILY_OPTIONS,
    "model",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "iterations",
    "lr_schedule",
    "optimizer",
    "init",
    "seed",
    "eval_every",
    "val_rows",
    "val_dataset",
    "select_by",
    "loss",
    "class_weights",
    "ema",
    "augment",
    "photometric",
    "crop",
    "bf16",
)


def resume_config(out: str | Path, **given) -> FitConfig:
    """The configuration to resume ``out/last.pt``: its recipe, updated by ``given``.

    Parameters
    ----------
    out : path
        Run folder.
    **given
        :class:`FitConfig` fields set explicitly (e.g. ``iterations`` to train longer);
        operational fields (device, workers, ...) not given take their defaults.
    """
    if not (Path(out) / "last.pt").is_file():
        raise BlursynthError(
            "nothing to resume: no last.pt (the run stopped before its first checkpoint, or "
            "never started); run the same command without --resume",
            out,
        )
    saved = dict(load_checkpoint(Path(out) / "last.pt")["train_config"])
    if "shards" in saved:  # runs written before the field was called ``datasets``
        saved.setdefault("datasets", saved.pop("shards"))
    names = {f.name for f in fields(FitConfig)}
    merged = {k: saved[k] for k in RECIPE_FIELDS if k in saved}
    merged.update({k: v for k, v in given.items() if k in names})
    merged.update(out=str(out), resume=True)
    merged.setdefault("datasets", saved["datasets"])
    return FitConfig(**merged)


@dataclass
class TrainState:
    """The training loop's state: saved in every checkpoint under ``extra["state"]``.

    ``run_*`` accumulate the running training loss/accuracy since the last evaluation (an
    interrupted run resumes them); ``train_s`` counts time in steps only, ``elapsed_s`` all.
    """

    iteration: int = 0
    best_score: float = -1.0
    best_val_acc: float = -1.0
    best_val_miou: float = math.nan
    best_iteration: int = 0
    elapsed_s: float = 0.0
    train_s: float = 0.0
    samples: int = 0
    run_loss: float = 0.0
    run_correct: int = 0
    run_n: int = 0
    val_loss: float = math.nan
    val_acc: float = math.nan
    val_miou: float = math.nan

    @classmethod
    def from_checkpoint(cls, payload: dict) -> TrainState:
        """The state of a checkpoint, also of one written before this class (flat keys)."""
        extra = payload.get("extra", {})
        saved = extra.get("state", extra)  # legacy checkpoints kept the keys in ``extra``
        names = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in saved.items() if k in names})
        state.iteration = int(payload["iteration"])
        if "best_score" not in saved:  # written before --select-by: chosen by accuracy
            state.best_score = state.best_val_acc
        return state


@dataclass
class FitResult:
    """What ``summary.json`` holds."""

    out: str
    iteration: int
    final_val_acc: float
    final_val_loss: float
    final_val_miou: float
    best_val_acc: float
    best_val_miou: float
    best_iteration: int
    select_by: str
    samples_per_s: float
    wall_s: float
    device: str
    data_on_device: bool


def lr_at(iteration: int, base: float, iterations: int, schedule: str) -> float:
    """Learning rate for step ``iteration`` (0-based) of ``iterations``."""
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * iteration / iterations))
    if schedule == "step":
        return base * 0.1 ** ((iteration >= iterations // 2) + (iteration >= iterations * 3 // 4))
    return base


def make_optimizer(model: nn.Module, cfg: FitConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` over the model's parameter groups
    (:func:`blursynth_train.models.parameter_groups`); each step sets a group's rate to the
    scheduled rate times its ``lr_scale``."""
    groups = parameter_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the loop and its evaluations share (built once by :func:`fit`)."""

    cfg: FitConfig
    out: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    state: TrainState
    rows: list[dict]
    data: TrainingData
    val: object
    device: torch.device
    resident: bool
    iterations: int
    eval_every: int
    say: object
    tb: object = None
    class_weights: torch.Tensor | None = None
    ema: AveragedModel | None = None
    last_eval: int | None = None
    t_start: float = field(default_factory=time.perf_counter)
    t_mark: float = field(default_factory=time.perf_counter)
    elapsed0: float = 0.0
    marked_samples: int = 0

    @property
    def shipped_model(self) -> nn.Module:
        """What validation scores and checkpoints hold as the model: the weight average with
        ``--ema``, else the trained weights."""
        return self.model if self.ema is None else self.ema.module

    def checkpoint(self, name: str) -> None:
        save_checkpoint(
            self.out / name,
            self.shipped_model,
            optimizer=self.optimizer,
            iteration=self.state.iteration,
            train_config=asdict(self.cfg),
            extra={
                "state": asdict(self.state),
                "manifest_sha256": self.data.sha256,
                "rng": _rng_state(),
                # only with --val-dataset, so other checkpoints keep their three keys
                **({"val_manifest_sha256": self.data.val_sha256} if self.data.val_sha256 else {}),
                # only with --ema: the trained weights, to resume from
                **(_trained_weights(self.model, self.ema) if self.ema is not None else {}),
            },
        )

    def validate(self) -> Validation:
        return validate(self.shipped_model, self.val_batches(), self.cfg.bf16)

    def val_batches(self):
        return eval_batches(self.val, EVAL_BATCH_SIZE, self.device, self.data.n_val)

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t_start


def fit(config: FitConfig) -> FitResult:
    """Train, evaluate and checkpoint as ``config`` says; see the module docstring.

    The run folder is locked for the run (:func:`blursynth.locking.folder_lock`): a second
    ``fit`` into it is refused.
    """
    from blursynth.locking import folder_lock

    with folder_lock(config.out, "fit"):
        _remove_stale_temporaries(Path(config.out))
        return _fit_locked(config)


def _remove_stale_temporaries(out: Path) -> None:
    """Half-written files of a killed run (``*.tmp-<pid>``): no run holds them now."""
    for tmp in out.glob("*.tmp-*"):
        tmp.unlink()


def _fit_locked(config: FitConfig) -> FitResult:
    cfg = config
    say = _printer(cfg.quiet)
    iterations = min(cfg.iterations, DRY_RUN_ITERATIONS) if cfg.dry_run else cfg.iterations
    val_rows = cfg.val_rows or None
    if cfg.dry_run:
        val_rows = min(val_rows or DRY_RUN_VAL_ROWS, DRY_RUN_VAL_ROWS)
    device = _setup_device(cfg)
    family = get_family(cfg.model)
    data = open_training_data(
        cfg.dataset_paths(),
        dataset_kind=family.dataset_kind,
        val_rows=val_rows,
        val_path=cfg.val_dataset,
        verify=cfg.verify,
        quiet=cfg.quiet,
    )
    try:
        if len(data.train) < cfg.batch_size or data.n_val == 0:
            raise BlursynthError(
                f"too few rows: {len(data.train)} train (batch size {cfg.batch_size}), "
                f"{data.n_val} val",
                data.datasets[0].path,
            )
        resident = _hold_on_device(cfg, data, device)
        batches, val = _batch_sources(cfg, data, device, resident, say)
        config = family.config_for_dataset(data.params, cfg.family_options())
        # ImageNet weights only for a fresh start: --init and --resume bring their own
        model = create_model(config, pretrained=cfg.init is None and not cfg.resume)
        model = model.to(device)
        class_weights = _class_weights(cfg, model, device)
        if cfg.init is not None and not cfg.resume:
            _initialise(model, cfg.init)
        optimizer = make_optimizer(model, cfg)
        ema = _weight_average(model, cfg.ema) if cfg.ema else None
        state, rows = start_or_resume(cfg, model, optimizer, data, say, ema)
        _write_run_config(cfg, model, device, resident, data)
        run = Run(
            cfg,
            Path(cfg.out),
            model,
            optimizer,
            state,
            rows,
            data,
            val,
            device,
            resident,
            iterations,
            iterations if cfg.dry_run else cfg.eval_every,
            say,
            class_weights=class_weights,
            ema=ema,
        )
        run.tb = _tensorboard(run.out, say) if cfg.tensorboard else None
        stopped = train_loop(run, batches)
        return _finish(run, stopped)
    finally:
        data.close()


def _weight_average(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers (BatchNorm
    statistics too), updated after each step (``torch.optim.swa_utils.AveragedModel``).

    The first update copies the weights; the ``n``-th after it uses the decay
    ``min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates``, timm's EMA warm-up). A constant 0.999 would still give the weights of
    the first step 22 % of the average after 1,500 steps.
    """

    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor):
        d = ema_decay(decay, n)  # n stays on the device: no host sync per tensor
        return averaged * d + current * (1.0 - d)

    return AveragedModel(model, avg_fn=average, use_buffers=True)


def ema_decay(decay: float, n):
    """The decay of the ``n``-th update after the first (see :func:`_weight_average`);
    ``n`` an int, or a tensor (the result is then a tensor on its device)."""
    warm = (1.0 + n) / (10.0 + n)
    return warm.clamp(max=decay) if isinstance(warm, torch.Tensor) else min(decay, warm)


def _trained_weights(model: nn.Module, ema: AveragedModel) -> dict:
    """The checkpoint entries an ``--ema`` run adds: the trained weights and the count of
    averaged steps."""
    return {
        "train_model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema_n_averaged": int(ema.n_averaged),
    }


def _class_weights(cfg: FitConfig, model: nn.Module, device) -> torch.Tensor | None:
    """``cfg.class_weights`` as a tensor on the device, checked against the model's classes."""
    if not cfg.class_weights:
        return None
    classes = int(getattr(model.config, "classes", 2))
    if len(cfg.class_weights) != classes:
        raise BlursynthError(
            f"--class-weights gives {len(cfg.class_weights)} weights, the model has "
            f"{classes} classes",
            cfg.dataset_paths()[0],
        )
    return torch.tensor(cfg.class_weights, dtype=torch.float32, device=device)


def _setup_device(cfg: FitConfig) -> torch.device:
    """The training device, determinism switches and the global seed."""
    device = resolve_device(cfg.device)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic  # fixed shapes: let cuDNN pick
    torch.manual_seed(cfg.seed)
    return device


def _hold_on_device(cfg: FitConfig, data: TrainingData, device: torch.device) -> bool:
    """Whether the training split is held in device memory (``data_on_device``)."""
    nbytes = data.nbytes()
    resident = cfg.data_on_device == "yes" or (
        cfg.data_on_device == "auto" and nbytes <= memory_budget(device)
    )
    if cfg.resume and cfg.data_on_device == "auto":
        # the two data paths draw different batch orders: an exact resume keeps the run's path
        resident = _previous_data_path(Path(cfg.out), resident)
    return resident


def _batch_sources(cfg: FitConfig, data: TrainingData, device, resident: bool, say):
    """Training batches and the validation data, held on the device or streamed."""
    nbytes = data.nbytes()
    if resident:
        say(f"loading {nbytes / 1e6:.1f} MB of rows onto {device}")
        train_x, train_y = load_split(data.train, device, quiet=cfg.quiet, label="train")
        batches = ResidentBatches(train_x, train_y, cfg.batch_size, cfg.seed)
        return batches, load_split(data.val, device, rows=data.n_val, quiet=True)
    say(f"streaming {nbytes / 1e6:.1f} MB of rows with {cfg.workers} workers")
    batches = StreamedBatches(data.train, cfg.batch_size, cfg.seed, device, workers=cfg.workers)
    return batches, data.val


def start_or_resume(cfg: FitConfig, model, optimizer, data: TrainingData, say, ema=None):
    """The loop state and log rows to start from: ``last.pt``'s on resume, else fresh.

    A fresh start refuses a run folder that already holds a run unless ``force``.
    """
    out = Path(cfg.out)
    if cfg.resume:
        state = _restore(out / "last.pt", model, optimizer, data, cfg.force, ema)
        rows = [r for r in _read_rows(out / "log.csv") if r["iteration"] <= state.iteration]
        say(f"resuming {out} at iteration {state.iteration}")
        return state, rows
    if (out / "last.pt").exists() and not cfg.force:
        raise BlursynthError(
            "already holds a run (last.pt); pass --resume to continue it or --force to start over",
            out,
        )
    return TrainState(), []


def _write_run_config(cfg: FitConfig, model, device, resident: bool, data: TrainingData):
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    datasets = [
        {"path": str(d.path), "manifest_sha256": d.manifest_sha256, "train_rows": len(d["train"])}
        for d in data.datasets
    ]
    write_json(
        out / "config.json",
        {
            "fit": asdict(cfg),
            "model": model.config.to_dict(),
            "device": str(device),
            "data_on_device": resident,
            "torch": torch.__version__,
            "dataset": {
                "manifest_sha256": data.sha256,
                "kind": data.datasets[0].kind,
                "params": data.params,
                "train_rows": len(data.train),
                "val_rows": data.n_val,
                "datasets": datasets,
                "val_dataset": None
                if data.val_dataset is None
                else {"path": str(data.val_dataset.path), "manifest_sha256": data.val_sha256},
            },
        },
    )


# ---- the loop --------------------------------------------------------------------------------


class RunningMeter:
    """Running training loss and accuracy, kept on the device (no host sync per step)."""

    def __init__(self, state: TrainState, device: torch.device):
        self.loss = torch.tensor(state.run_loss, dtype=torch.float64, device=device)
        self.correct = torch.tensor(state.run_correct, dtype=torch.int64, device=device)
        self.n = torch.tensor(state.run_n, dtype=torch.int64, device=device)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        valid = y != IGNORE
        count = valid.sum()
        self.loss += loss.detach() * count
        self.correct += ((logits.detach().argmax(1) == y) & valid).sum()
        self.n += count

    def means(self) -> tuple[float, float]:
        n = max(int(self.n.item()), 1)
        return self.loss.item() / n, self.correct.item() / n

    def save_into(self, state: TrainState) -> None:
        state.run_loss, state.run_correct, state.run_n = (
            self.loss.item(),
            int(self.correct.item()),
            int(self.n.item()),
        )

    def reset(self) -> None:
        self.loss.zero_(), self.correct.zero_(), self.n.zero_()


def train_loop(run: Run, batches) -> bool:
    """Step until ``run.iterations`` or a stop request; ``True`` when stopped early."""
    cfg, state, model = run.cfg, run.state, run.model
    step_model = torch.compile(model) if cfg.compile else model
    meter = RunningMeter(state, run.device)
    run.elapsed0, run.marked_samples = state.elapsed_s, state.samples
    run.t_start = run.t_mark = time.perf_counter()
    if run.rows and run.rows[-1]["iteration"] == state.iteration:
        run.last_eval = state.iteration
    todo = max(run.iterations - state.iteration, 0)
    model.train()
    with _stop_requests() as stop, TrainProgress(todo, cfg.quiet) as bar:
        for x, y in islice(batches.iterate(state.iteration), todo):
            lr = lr_at(state.iteration, cfg.lr, run.iterations, cfg.lr_schedule)
            for group in run.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            if cfg.crop:
                x, y = random_crop(x, y, cfg.crop)
            if cfg.augment:
                x, y = augment(x, y)
            if cfg.photometric:
                x = photometric(x)
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = step_model(x)
            loss = training_loss(logits, y, cfg.loss, run.class_weights)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            if run.ema is not None:
                run.ema.update_parameters(model)
            state.iteration += 1
            state.samples += len(y)
            meter.add(loss, logits, y)
            # a host sync: every step on CPU (free), every 25th on an accelerator
            if run.device.type == "cpu" or state.iteration % TrainProgress.every == 0:
                _check_finite(meter.loss, "training loss", run)
            bar.step(meter, state.samples, run)
            if state.iteration % run.eval_every == 0 or state.iteration == run.iterations:
                evaluate_and_log(run, meter, lr)
            if stop.requested:
                break
    if run.tb is not None:
        run.tb.close()
    if run.last_eval != state.iteration:  # state since the last evaluation
        state.train_s += time.perf_counter() - run.t_mark
        state.elapsed_s = run.elapsed()
        meter.save_into(state)
        run.checkpoint("last.pt")
    return stop.requested


def evaluate_and_log(run: Run, meter: RunningMeter, lr: float) -> None:
    """Validate; add a log row; rewrite the log and curves; save ``best.pt`` and ``last.pt``."""
    state = run.state
    now = time.perf_counter()
    state.train_s += now - run.t_mark
    samples_per_s = (state.samples - run.marked_samples) / max(now - run.t_mark, 1e-9)
    _record_validation(state, run.validate())
    _check_finite(torch.tensor(state.val_loss), "validation loss", run)
    state.elapsed_s = run.elapsed()
    train_loss, train_acc = meter.means()
    row = {
        "iteration": state.iteration,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": state.val_loss,
        "val_acc": state.val_acc,
        "val_miou": state.val_miou,
        "lr": lr,
        "samples_per_s": samples_per_s,
        "elapsed_s": state.elapsed_s,
    }
    run.rows.append(row)
    title = " + ".join(Path(p).name for p in run.cfg.dataset_paths())
    _write_logs(run.out, run.rows, run.tb, title=title)
    meter.reset()
    state.run_loss, state.run_correct, state.run_n = 0.0, 0, 0
    score = state.val_miou if run.cfg.select_by == "miou" else state.val_acc
    if score > state.best_score:
        state.best_score, state.best_iteration = score, state.iteration
        state.best_val_acc, state.best_val_miou = state.val_acc, state.val_miou
        run.checkpoint("best.pt")
    run.checkpoint("last.pt")
    run.last_eval = state.iteration
    run.say(_progress_line(row, run.iterations, run.cfg.batch_size))
    run.t_mark, run.marked_samples = time.perf_counter(), state.samples


def _check_finite(value: torch.Tensor, what: str, run: Run) -> None:
    """Stop a diverged run before it saves anything: one line naming the iteration and the
    last checkpoint, which stays as it was (its weights were finite)."""
    if bool(torch.isfinite(value)):
        return
    last = run.out / "last.pt"
    kept = (
        f"{last} still holds iteration {load_checkpoint(last)['iteration']}"
        if last.is_file()
        else "no checkpoint was written"
    )
    raise BlursynthError(
        f"the {what} is not finite at iteration {run.state.iteration}: training diverged "
        f"(try a lower --lr); {kept}",
        run.out,
    )


def _record_validation(state: TrainState, v: Validation) -> None:
    state.val_loss, state.val_acc, state.val_miou = v.loss, v.accuracy, v.miou


def _finish(run: Run, stopped: bool) -> FitResult:
    """Interrupted: say where it saved. Finished: final validation if due, ``summary.json``."""
    state, out = run.state, run.out
    if stopped:
        raise BlursynthError(
            f"interrupted at iteration {state.iteration}; saved {out / 'last.pt'}; "
            "continue with --resume"
        )
    if run.last_eval != state.iteration:
        _record_validation(state, run.validate())
    result = FitResult(
        out=str(out),
        iteration=state.iteration,
        final_val_acc=state.val_acc,
        final_val_loss=state.val_loss,
        final_val_miou=state.val_miou,
        best_val_acc=state.best_val_acc,
        best_val_miou=state.best_val_miou,
        best_iteration=state.best_iteration,
        select_by=run.cfg.select_by,
        samples_per_s=state.samples / max(state.train_s, 1e-9),
        wall_s=run.elapsed(),
        device=str(run.device),
        data_on_device=run.resident,
    )
    write_json(out / "summary.json", asdict(result))
    return result


class TrainProgress:
    """A live progress bar over the steps, showing the running loss and the rate.

    The loss is read from the device every :attr:`every` steps only, so the bar costs no
    host sync on the other steps; a quiet bar reads nothing (the GPU queue never drains).
    """

    every = 25

    def __init__(self, steps: int, quiet: bool):
        self._cm = progressbar(length=steps, label="train", quiet=quiet, show_item=True)
        self.quiet = quiet
        self._k = 0
        self._text = ""

    def __enter__(self) -> TrainProgress:
        self.bar = self._cm.__enter__()
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)

    def step(self, meter: RunningMeter, samples: int, run: Run) -> None:
        if self.quiet:
            return
        self._k += 1
        if self._k % self.every == 0:
            loss, acc = meter.means()
            rate = (samples - run.marked_samples) / max(time.perf_counter() - run.t_mark, 1e-9)
            self._text = f"loss {loss:.4f} acc {acc:.3f} {rate:.0f} samples/s"
        self.bar.update(1, self._text)


# ---- helpers -------------------------------------------------------------------------------


def _previous_data_path(out: Path, default: bool) -> bool:
    """The resolved data path (resident or not) recorded in a run's ``config.json``."""
    try:
        previous = json.loads((out / "config.json").read_text()).get("data_on_device")
    except (OSError, ValueError, AttributeError):
        return default
    return previous if isinstance(previous, bool) else default


def _initialise(model: nn.Module, path: str) -> None:
    """Copy the weights of checkpoint ``path`` into ``model``: same family, classes and input
    normalisation, and weights of the same shapes; training-only settings of the config
    (e.g. ``freeze_blocks``, ``pretrained``) may differ."""
    from blursynth_train.checkpoint import load_model
    from blursynth_train.weights import resolve_weights

    path = resolve_weights(path)
    source, _ = load_model(path)
    a, b = source.config, model.config
    for name in ("kind", "classes", "mean", "std"):
        if getattr(a, name, None) != getattr(b, name, None):
            raise BlursynthError(
                f"--init: its {name} ({getattr(a, name, None)}) differs from this run's "
                f"({getattr(b, name, None)})",
                path,
            )
    try:
        model.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or ["differs"])[-1].strip()
        raise BlursynthError(
            f"--init: its architecture differs from this run's ({first})", path
        ) from None


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore(
    path: Path, model: nn.Module, optimizer, data: TrainingData, force: bool, ema=None
) -> TrainState:
    """Load ``last.pt`` into ``model``, ``optimizer``, the weight average ``ema`` (if any)
    and the RNGs; return the loop state.

    A checkpoint of an ``--ema`` run holds the average as ``model_state`` and the trained
    weights under ``extra["train_model_state"]``; resumed without ``ema``, training goes on
    from the trained weights; resumed with it from a run without, the average starts anew.
    """
    payload = load_checkpoint(path)
    extra = payload.get("extra", {})
    for key, now, what in (
        ("manifest_sha256", data.sha256, "trained"),
        ("val_manifest_sha256", data.val_sha256, "validated"),
    ):
        saved = extra.get(key)
        if saved != now and not force:
            raise BlursynthError(
                f"was {what} on dataset {str(saved)[:12]}, not on this one ({str(now)[:12]}); "
                "pass --force to resume anyway",
                path,
            )
    try:
        model.load_state_dict(extra.get("train_model_state", payload["model_state"]))
        optimizer.load_state_dict(payload["optimizer_state"])
        if ema is not None and "train_model_state" in extra:
            ema.module.load_state_dict(payload["model_state"])
            ema.n_averaged.fill_(int(extra["ema_n_averaged"]))
    except (KeyError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # one line
        raise BlursynthError(
            f"checkpoint does not match this model or dataset ({first})", path
        ) from None
    rng = extra.get("rng", {})
    if "cpu" in rng:
        torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return TrainState.from_checkpoint(payload)


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [{**r, "iteration": int(r["iteration"])} for r in read_log(path)]


def _write_logs(out: Path, rows: list[dict], tb, title: str) -> None:
    """Rewrite ``log.csv`` and ``curves.png`` (one row per evaluation: small); add the last
    row to TensorBoard."""
    lines = [",".join(LOG_FIELDS)] + [",".join(_log_cells(r)) for r in rows]
    write_text(out / "log.csv", "\n".join(lines) + "\n")
    plot_curves(rows, out / "curves.png", title=title)
    if tb is not None:
        for key in LOG_FIELDS[1:]:
            if rows[-1].get(key) is not None:
                tb.add_scalar(key, rows[-1][key], rows[-1]["iteration"])
        tb.flush()


def _log_cells(row: dict) -> list[str]:
    """A log row's cells; a number it lacks (a row logged before the field existed, e.g.
    ``val_miou`` on resume of an older run) is left empty, which :func:`read_log` reads
    back as ``None``."""
    cells = []
    for k in LOG_FIELDS:
        v = row.get(k)
        cells.append("" if v is None else str(int(v)) if k == "iteration" else f"{v:.6g}")
    return cells


def _progress_line(row: dict, iterations: int, batch_size: int) -> str:
    it = int(row["iteration"])
    eta_h = (iterations - it) * batch_size / max(row["samples_per_s"], 1e-9) / 3600
    return (
        f"it {it}/{iterations}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  "
        f"val_miou {row['val_miou']:.4f}  lr {row['lr']:.2e}  "
        f"{row['samples_per_s']:.0f} samples/s  eta {eta_h:.1f} h"
    )


def _printer(quiet: bool):
    def say(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    return say


def _tensorboard(out: Path, say):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        say("tensorboard is not installed; skipping TensorBoard logs")
        return None
    return SummaryWriter(str(out / "tb"))


class _StopFlag:
    requested = False


@contextmanager
def _stop_requests():
    """Turn the first SIGINT/SIGTERM into a flag the loop checks between steps.

    The step in flight finishes, so the saved state is consistent; a second Ctrl-C raises
    :class:`KeyboardInterrupt` as usual. Outside the main thread no handler is installed.
    """
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
