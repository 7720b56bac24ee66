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

import functools
import math
import os
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel

from blursynth.errors import BlursynthError
from blursynth.imageio import write_json
from blursynth_train.checkpoint import load_checkpoint, save_checkpoint
from blursynth_train.data import (
    ResidentBatches,
    StreamedBatches,
    TrainingData,
    augment,
    eval_batch_size,
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
from blursynth_train.recipe import FAMILY_OPTIONS, FitConfig, Recipe, resume_config
from blursynth_train.runlog import (
    LOG_FIELDS,
    TrainProgress,
    printer,
    progress_line,
    stop_requests,
    tensorboard_writer,
    write_logs,
)
from blursynth_train.runstate import (
    TrainState,
    ema_decay,
    initialise,
    previous_data_path,
    rng_state,
    start_or_resume,
    trained_weights,
    weight_average,
)

__all__ = [
    "FAMILY_OPTIONS",
    "LOG_FIELDS",
    "FitConfig",
    "FitResult",
    "Recipe",
    "TrainState",
    "ema_decay",
    "fit",
    "resume_config",
]

DRY_RUN_ITERATIONS = 5
DRY_RUN_VAL_ROWS = 512
EVAL_BATCH_SIZE = 512
"""Validation rows per forward pass at most; fewer for large rows (:data:`EVAL_PIXELS`)."""
EVAL_PIXELS = 1 << 21
"""Validation pixels per forward pass: 512 tiles of 256 px were a 4 GB activation of the
U-Net's first layer (a 1.3 GB dataset's fit peaked at 7.3 GB of RAM)."""


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
    (:func:`blursynth_train.models.parameter_groups`), each at ``cfg.lr`` times its
    ``lr_scale``: the rates the schedule (:func:`make_scheduler`) starts from."""
    groups = parameter_groups(model, cfg.weight_decay)
    for group in groups:
        group["lr"] = cfg.lr * group.get("lr_scale", 1.0)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def batch_transforms(cfg: FitConfig) -> list:
    """The recipe's batch transforms, ``(x, y) -> (x, y)``, in the order they apply, built
    once (the recipe has refused those its model family cannot take): the crop, the flips
    and turns, the photometric jitter. Each draws from the device's global RNG, which
    checkpoints save."""
    transforms = []
    if cfg.crop:
        transforms.append(functools.partial(random_crop, size=cfg.crop))
    if cfg.augment:
        transforms.append(augment)
    if cfg.photometric:
        transforms.append(lambda x, y: (photometric(x), y))
    return transforms


def make_scheduler(optimizer, cfg: FitConfig, iterations: int, start: int) -> LambdaLR:
    """``cfg.lr_schedule`` over ``iterations`` as a :class:`torch.optim.lr_scheduler.LambdaLR`
    (every group's rate is its starting rate times :func:`lr_at`'s factor), positioned at
    iteration ``start``: the schedule is a function of the iteration, which every checkpoint
    holds, so a resumed run (even one given more ``--iterations``) is on it exactly."""
    for group in optimizer.param_groups:  # a resumed optimizer holds decayed rates
        group["initial_lr"] = cfg.lr * group.get("lr_scale", 1.0)
    factor = functools.partial(lr_at, base=1.0, iterations=iterations, schedule=cfg.lr_schedule)
    return LambdaLR(optimizer, factor, last_epoch=start - 1)


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the loop and its evaluations share (built once by :func:`fit`)."""

    cfg: FitConfig
    out: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
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
                "rng": rng_state(),
                "scheduler": self.scheduler.state_dict(),
                # only with --val-dataset, so other checkpoints keep their three keys
                **({"val_manifest_sha256": self.data.val_sha256} if self.data.val_sha256 else {}),
                # only with --ema: the trained weights, to resume from
                **(trained_weights(self.model, self.ema) if self.ema is not None else {}),
            },
        )

    def validate(self) -> Validation:
        return validate(self.shipped_model, self.val_batches(), self.cfg.bf16)

    def val_batches(self):
        rows = eval_batch_size(self.val, EVAL_PIXELS, EVAL_BATCH_SIZE)
        return eval_batches(self.val, rows, self.device, self.data.n_val)

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
    say = printer(cfg.quiet)
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
        _check_rows(cfg, data)
        resident = _hold_on_device(cfg, data, device)
        batches, val = _batch_sources(cfg, data, device, resident, say)
        config = family.config_for_dataset(data.params, cfg.family_options())
        # ImageNet weights only for a fresh start: --init and --resume bring their own
        model = create_model(config, pretrained=cfg.init is None and not cfg.resume)
        model = model.to(device)
        class_weights = _class_weights(cfg, model, device)
        if cfg.init is not None and not cfg.resume:
            initialise(model, cfg.init)
        optimizer = make_optimizer(model, cfg)
        ema = weight_average(model, cfg.ema) if cfg.ema else None
        state, rows = start_or_resume(cfg, model, optimizer, data, say, ema)
        scheduler = make_scheduler(optimizer, cfg, iterations, state.iteration)
        _write_run_config(cfg, model, device, resident, data)
        run = Run(
            cfg,
            Path(cfg.out),
            model,
            optimizer,
            scheduler,
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
        run.tb = tensorboard_writer(run.out, say) if cfg.tensorboard else None
        stopped = train_loop(run, batches)
        return _finish(run, stopped)
    finally:
        data.close()


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


def _check_rows(cfg: FitConfig, data: TrainingData) -> None:
    """Enough rows for a batch and a validation, and tiles no smaller than ``--crop``."""
    if len(data.train) < cfg.batch_size or data.n_val == 0:
        raise BlursynthError(
            f"too few rows: {len(data.train)} train (batch size {cfg.batch_size}), "
            f"{data.n_val} val",
            data.datasets[0].path,
        )
    _check_crop(cfg.crop, data)


def _check_crop(crop: int, data: TrainingData) -> None:
    """Refuse a ``--crop`` larger than the tiles (it used to train on whole tiles without a
    word)."""
    tile = data.params.get("tile_size")
    if crop and tile is not None and crop > tile:
        raise BlursynthError(
            f"--crop {crop} is larger than the dataset's {tile}-px tiles; use at most {tile} "
            "(or 0: whole tiles)",
            data.datasets[0].path,
        )


def _hold_on_device(cfg: FitConfig, data: TrainingData, device: torch.device) -> bool:
    """Whether the training split is held in device memory (``data_on_device``)."""
    nbytes = data.nbytes()
    resident = cfg.data_on_device == "yes" or (
        cfg.data_on_device == "auto" and nbytes <= memory_budget(device)
    )
    if cfg.resume and cfg.data_on_device == "auto":
        # the two data paths draw different batch orders: an exact resume keeps the run's path
        resident = previous_data_path(Path(cfg.out), resident)
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
    transforms = batch_transforms(cfg)
    step_model = torch.compile(model) if cfg.compile else model
    meter = RunningMeter(state, run.device)
    run.elapsed0, run.marked_samples = state.elapsed_s, state.samples
    run.t_start = run.t_mark = time.perf_counter()
    if run.rows and run.rows[-1]["iteration"] == state.iteration:
        run.last_eval = state.iteration
    todo = max(run.iterations - state.iteration, 0)
    model.train()
    with stop_requests() as stop, TrainProgress(todo, cfg.quiet) as bar:
        for x, y in islice(batches.iterate(state.iteration), todo):
            lr = cfg.lr * run.scheduler.lr_lambdas[0](state.iteration)  # logged: scale 1
            for transform in transforms:
                x, y = transform(x, y)
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = step_model(x)
            loss = training_loss(logits, y, cfg.loss, run.class_weights)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            run.scheduler.step()
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
    write_logs(run.out, run.rows, run.tb, title=title)
    meter.reset()
    state.run_loss, state.run_correct, state.run_n = 0.0, 0, 0
    score = state.val_miou if run.cfg.select_by == "miou" else state.val_acc
    if score > state.best_score:
        state.best_score, state.best_iteration = score, state.iteration
        state.best_val_acc, state.best_val_miou = state.val_acc, state.val_miou
        run.checkpoint("best.pt")
    run.checkpoint("last.pt")
    run.last_eval = state.iteration
    run.say(progress_line(row, run.iterations, run.cfg.batch_size))
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


# ---- helpers -------------------------------------------------------------------------------
