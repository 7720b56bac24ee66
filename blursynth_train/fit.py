"""Train :class:`BlurNet` on blursynth shards: ``fit(FitConfig(...)) -> FitResult``.

Reads top to bottom like nanoGPT's ``train.py``: device, data, model and optimizer, resume,
then the loop (step; every ``eval_every`` iterations evaluate, log, plot, checkpoint), then a
summary. The defaults are the report's recipe: SGD, batch 64, learning rate 1e-4 (constant),
momentum 0.9, weight decay 5e-4, 1,000,000 iterations.

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
from dataclasses import asdict, dataclass, fields
from itertools import islice
from pathlib import Path

import click
import torch
import torch.nn.functional as F

from blursynth.errors import BlursynthError
from blursynth.imageio import write_json, write_text
from blursynth.shards import MixedSplit, open_dataset, training_data_sha256
from blursynth_train.checkpoint import load_checkpoint, save_checkpoint
from blursynth_train.data import (
    ResidentBatches,
    StreamedBatches,
    augment,
    eval_batches,
    load_split,
    memory_budget,
    row_bytes,
)
from blursynth_train.model import BlurNet, ModelConfig
from blursynth_train.plots import plot_curves, read_log

LR_SCHEDULES = ("constant", "cosine", "step")
OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cpu", "cuda")
ON_DEVICE = ("auto", "yes", "no")
DRY_RUN_ITERATIONS = 5
DRY_RUN_VAL_ROWS = 512
EVAL_BATCH_SIZE = 512
LOG_FIELDS = (
    "iteration",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "samples_per_s",
    "elapsed_s",
)


@dataclass
class FitConfig:
    """Everything a training run depends on (stored in ``config.json`` and checkpoints).

    Parameters
    ----------
    shards : path or list of paths
        Dataset folder(s) (``manifest.json`` with ``train`` and ``val`` splits). With several,
        training rows come from all of them, interleaved in proportion to their sizes
        (:class:`blursynth.shards.MixedSplit`); validation uses the first one's ``val`` split.
    out : path
        Run folder.
    batch_size, lr, momentum, weight_decay, iterations
        The SGD recipe; defaults are the report's.
    lr_schedule : {"constant", "cosine", "step"}
        ``cosine`` decays to 0 at ``iterations``; ``step`` multiplies by 0.1 at 50 % and 75 %.
    optimizer : {"sgd", "adamw"}
        ``sgd`` (the report's) uses ``momentum``; ``adamw`` (Loshchilov & Hutter) uses the
        default betas and ``weight_decay`` as decoupled decay.
    init : path or "bundled", optional
        Start from the weights of this checkpoint (``fit`` or ``export`` output; ``bundled``:
        the shipped weights) instead of a random initialisation; the optimizer starts fresh.
    seed : int
        Weights, dropout, batch order and augmentation.
    device : {"auto", "cpu", "cuda"}
        ``auto`` takes CUDA when available.
    eval_every : int
        Iterations between evaluations (log row, plot, ``last.pt``, maybe ``best.pt``).
    val_rows : int
        Validate on the first ``val_rows`` rows (0: the whole split).
    workers : int
        DataLoader processes for the streamed path.
    data_on_device : {"auto", "yes", "no"}
        Hold the training split in device memory (RAM on CPU); ``auto`` does when it fits in
        half of the free memory.
    augment : bool
        Random flips and 90-degree rotations of each patch.
    bf16 : bool
        bfloat16 autocast for the forward pass.
    compile : bool
        ``torch.compile`` the model for the training step.
    deterministic : bool
        Deterministic CUDA kernels (see module docstring).
    tensorboard : bool
        Also write TensorBoard scalars to ``out/tb`` (skipped when not installed).
    resume : bool
        Continue from ``out/last.pt``.
    force : bool
        Resume on a different dataset, or start over in a run folder that holds a run.
    dry_run : bool
        A few iterations, one evaluation on at most 512 validation rows, all outputs.
    quiet : bool
        No progress output.
    """

    shards: str | list[str]
    out: str
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
    workers: int = 2
    data_on_device: str = "auto"
    augment: bool = False
    bf16: bool = False
    compile: bool = False
    deterministic: bool = False
    tensorboard: bool = False
    resume: bool = False
    force: bool = False
    dry_run: bool = False
    quiet: bool = False

    def __post_init__(self):
        if isinstance(self.shards, list | tuple):
            if not self.shards:
                raise ValueError("give at least one dataset folder")
            self.shards = [str(p) for p in self.shards]
            if len(self.shards) == 1:
                self.shards = self.shards[0]
        else:
            self.shards = str(self.shards)
        self.out = str(self.out)
        for name in ("batch_size", "iterations", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.seed < 0:  # SeedSequence (batch order) takes no negative entropy
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.val_rows < 0 or self.workers < 0:
            raise ValueError(
                f"val_rows and workers must be >= 0, got {self.val_rows}, {self.workers}"
            )
        if self.init is not None:
            self.init = str(self.init)
        for name, allowed in (
            ("lr_schedule", LR_SCHEDULES),
            ("optimizer", OPTIMIZERS),
            ("device", DEVICES),
            ("data_on_device", ON_DEVICE),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


# Fields that define what is trained; on --resume they default to the saved run's values.
RECIPE_FIELDS = (
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
    "augment",
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
    saved = load_checkpoint(Path(out) / "last.pt")["train_config"]
    names = {f.name for f in fields(FitConfig)}
    merged = {k: saved[k] for k in RECIPE_FIELDS if k in saved}
    merged.update({k: v for k, v in given.items() if k in names})
    merged.update(out=str(out), resume=True)
    if "shards" not in merged:
        merged["shards"] = saved["shards"]
    return FitConfig(**merged)


@dataclass
class FitResult:
    """What ``summary.json`` holds."""

    out: str
    iteration: int
    final_val_acc: float
    final_val_loss: float
    best_val_acc: float
    best_iteration: int
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


def dataset_paths(shards: str | list[str]) -> list[str]:
    """The dataset folder(s) of a :class:`FitConfig` ``shards`` value, as a list."""
    return [shards] if isinstance(shards, str) else list(shards)


def make_optimizer(model: BlurNet, cfg: FitConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` over all parameters (learning rate set per step)."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


@torch.no_grad()
def evaluate(model: BlurNet, batches, bf16: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) over ``batches``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n = 0
    for x, y in batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    model.train(was_training)
    return loss_sum.item() / max(n, 1), correct.item() / max(n, 1)


def fit(config: FitConfig) -> FitResult:
    """Train, evaluate and checkpoint as ``config`` says; see the module docstring."""
    cfg = config
    out = Path(cfg.out)
    say = _printer(cfg.quiet)
    iterations = min(cfg.iterations, DRY_RUN_ITERATIONS) if cfg.dry_run else cfg.iterations
    eval_every = iterations if cfg.dry_run else cfg.eval_every
    val_rows = cfg.val_rows or None
    if cfg.dry_run:
        val_rows = min(val_rows or DRY_RUN_VAL_ROWS, DRY_RUN_VAL_ROWS)

    # -- device and determinism -------------------------------------------------------------
    device = _pick_device(cfg.device)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic  # fixed shapes: let cuDNN pick
    torch.manual_seed(cfg.seed)

    # -- data ---------------------------------------------------------------------------------
    paths = dataset_paths(cfg.shards)
    datasets = [open_dataset(p) for p in paths]
    ds = datasets[0]
    for d in datasets:
        if d.format != "hdf5":
            raise BlursynthError(
                f"training reads uint8 shards (format hdf5), not {d.format!r}", d.path
            )
        if d.params["patch_size"] != ds.params["patch_size"]:
            raise BlursynthError(
                f"patch size {d.params['patch_size']} differs from "
                f"{ds.params['patch_size']} of {ds.path}",
                d.path,
            )
    train_split = ds["train"] if len(datasets) == 1 else MixedSplit([d["train"] for d in datasets])
    val_split = ds["val"]
    data_sha256 = training_data_sha256([d.manifest_sha256 for d in datasets])
    model_config = ModelConfig(patch_size=int(ds.params["patch_size"]))
    n_val = len(val_split) if val_rows is None else min(val_rows, len(val_split))
    if len(train_split) < cfg.batch_size or n_val == 0:
        raise BlursynthError(
            f"too few rows: {len(train_split)} train (batch size {cfg.batch_size}), {n_val} val",
            ds.path,
        )
    nbytes = (len(train_split) + n_val) * row_bytes(model_config.patch_size)
    resident = cfg.data_on_device == "yes" or (
        cfg.data_on_device == "auto" and nbytes <= memory_budget(device)
    )
    if cfg.resume and cfg.data_on_device == "auto":
        # the two data paths draw different batch orders: an exact resume keeps the run's path
        resident = _previous_data_path(out, resident)
    if resident:
        say(f"loading {nbytes / 1e6:.1f} MB of patches onto {device}")
        train_x, train_y = load_split(train_split, device, quiet=cfg.quiet, label="train")
        batches = ResidentBatches(train_x, train_y, cfg.batch_size, cfg.seed)
        val = load_split(val_split, device, rows=n_val, quiet=True)
    else:
        say(f"streaming {nbytes / 1e6:.1f} MB of patches with {cfg.workers} workers")
        batches = StreamedBatches(
            train_split, cfg.batch_size, cfg.seed, device, workers=cfg.workers
        )
        val = val_split

    # -- model and optimizer ------------------------------------------------------------------
    model = BlurNet(model_config).to(device)
    if cfg.init is not None and not cfg.resume:
        _initialise(model, cfg.init)
    optimizer = make_optimizer(model, cfg)

    # -- resume, or claim a fresh run folder --------------------------------------------------
    state = {
        "iteration": 0,
        "best_val_acc": -1.0,
        "best_iteration": 0,
        "elapsed_s": 0.0,
        "train_s": 0.0,
        "samples": 0,
        "run_loss": 0.0,
        "run_correct": 0,
        "run_n": 0,
        "val_loss": float("nan"),
        "val_acc": float("nan"),
    }
    if cfg.resume:
        state.update(_restore(out / "last.pt", model, optimizer, data_sha256, cfg.force))
        rows = [r for r in _read_rows(out / "log.csv") if r["iteration"] <= state["iteration"]]
        say(f"resuming {out} at iteration {state['iteration']}")
    else:
        if (out / "last.pt").exists() and not cfg.force:
            raise BlursynthError(
                "already holds a run (last.pt); pass --resume to continue it "
                "or --force to start over",
                out,
            )
        rows = []
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "config.json",
        {
            "fit": asdict(cfg),
            "model": model_config.to_dict(),
            "device": str(device),
            "data_on_device": resident,
            "torch": torch.__version__,
            "dataset": {
                "manifest_sha256": data_sha256,
                "params": ds.params,
                "train_rows": len(train_split),
                "val_rows": n_val,
                "datasets": [
                    {
                        "path": str(d.path),
                        "manifest_sha256": d.manifest_sha256,
                        "train_rows": len(d["train"]),
                    }
                    for d in datasets
                ],
            },
        },
    )
    tb = _tensorboard(out, say) if cfg.tensorboard else None
    step_model = torch.compile(model) if cfg.compile else model

    def checkpoint(path: Path, it: int) -> None:
        save_checkpoint(
            path,
            model,
            optimizer=optimizer,
            iteration=it,
            train_config=asdict(cfg),
            extra={
                **{k: v for k, v in state.items() if k != "iteration"},
                "manifest_sha256": data_sha256,
                "rng": _rng_state(),
            },
        )

    # -- training loop ------------------------------------------------------------------------
    it = state["iteration"]
    run_loss = torch.tensor(state["run_loss"], dtype=torch.float64, device=device)
    run_correct = torch.tensor(state["run_correct"], dtype=torch.int64, device=device)
    run_n = state["run_n"]
    t_start = t_mark = time.perf_counter()
    elapsed0, marked_samples = state["elapsed_s"], state["samples"]
    last_eval = it if rows and rows[-1]["iteration"] == it else None
    model.train()
    with _stop_requests() as stop:
        for x, y in islice(batches.iterate(it), max(iterations - it, 0)):
            lr = lr_at(it, cfg.lr, iterations, cfg.lr_schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if cfg.augment:
                x = augment(x)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = step_model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            it += 1
            # running training metrics stay on the device: no host sync per step
            run_loss += loss.detach() * len(y)
            run_correct += (logits.detach().argmax(1) == y).sum()
            run_n += len(y)
            state["samples"] += len(y)

            if it % eval_every == 0 or it == iterations:
                now = time.perf_counter()
                state["train_s"] += now - t_mark
                samples_per_s = (state["samples"] - marked_samples) / max(now - t_mark, 1e-9)
                val_loss, val_acc = evaluate(
                    model, eval_batches(val, EVAL_BATCH_SIZE, device, n_val), cfg.bf16
                )
                state.update(
                    iteration=it,
                    val_loss=val_loss,
                    val_acc=val_acc,
                    elapsed_s=elapsed0 + time.perf_counter() - t_start,
                )
                row = {
                    "iteration": it,
                    "train_loss": run_loss.item() / run_n,
                    "train_acc": run_correct.item() / run_n,
                    "val_loss": val_loss,
                    "val_acc": val_acc,
                    "lr": lr,
                    "samples_per_s": samples_per_s,
                    "elapsed_s": state["elapsed_s"],
                }
                rows.append(row)
                _write_logs(out, rows, tb, title=" + ".join(Path(p).name for p in paths))
                run_loss.zero_(), run_correct.zero_()
                run_n, state["run_loss"], state["run_correct"], state["run_n"] = 0, 0.0, 0, 0
                if val_acc > state["best_val_acc"]:
                    state.update(best_val_acc=val_acc, best_iteration=it)
                    checkpoint(out / "best.pt", it)
                checkpoint(out / "last.pt", it)
                last_eval = it
                say(_progress_line(row, iterations, cfg.batch_size))
                t_mark, marked_samples = time.perf_counter(), state["samples"]
            if stop.requested:
                break
    if tb is not None:
        tb.close()

    # -- interrupted: save and stop; finished: summary ----------------------------------------
    now = time.perf_counter()
    if last_eval != it:  # state since the last evaluation (interrupt or resume past the end)
        state["train_s"] += now - t_mark
        state.update(
            iteration=it,
            elapsed_s=elapsed0 + now - t_start,
            run_loss=run_loss.item(),
            run_correct=run_correct.item(),
            run_n=run_n,
        )
        checkpoint(out / "last.pt", it)
    if stop.requested:
        raise BlursynthError(
            f"interrupted at iteration {it}; saved {out / 'last.pt'}; continue with --resume"
        )
    if last_eval != it:
        state["val_loss"], state["val_acc"] = evaluate(
            model, eval_batches(val, EVAL_BATCH_SIZE, device, n_val), cfg.bf16
        )
    result = FitResult(
        out=str(out),
        iteration=it,
        final_val_acc=state["val_acc"],
        final_val_loss=state["val_loss"],
        best_val_acc=state["best_val_acc"],
        best_iteration=state["best_iteration"],
        samples_per_s=state["samples"] / max(state["train_s"], 1e-9),
        wall_s=elapsed0 + now - t_start,
        device=str(device),
        data_on_device=resident,
    )
    write_json(out / "summary.json", asdict(result))
    for d in datasets:
        d.close()
    return result


# ---- helpers -------------------------------------------------------------------------------


def _previous_data_path(out: Path, default: bool) -> bool:
    """The resolved data path (resident or not) recorded in a run's ``config.json``."""
    try:
        previous = json.loads((out / "config.json").read_text()).get("data_on_device")
    except (OSError, ValueError, AttributeError):
        return default
    return previous if isinstance(previous, bool) else default


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BlursynthError("--device cuda, but torch sees no CUDA device")
    return torch.device(name)


def _initialise(model: BlurNet, path: str) -> None:
    """Copy the weights of checkpoint ``path`` into ``model`` (same architecture required)."""
    from blursynth_train.checkpoint import load_model
    from blursynth_train.weights import resolve_weights

    path = resolve_weights(path)
    source, _ = load_model(path)
    if source.config != model.config:
        raise BlursynthError(
            f"--init: its model ({source.config}) differs from this dataset's ({model.config})",
            path,
        )
    model.load_state_dict(source.state_dict())


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore(path: Path, model: BlurNet, optimizer, manifest_sha256: str, force: bool) -> dict:
    """Load ``last.pt`` into ``model`` and ``optimizer``; return the saved loop state."""
    payload = load_checkpoint(path)
    extra = payload.get("extra", {})
    saved_sha = extra.get("manifest_sha256")
    if saved_sha != manifest_sha256 and not force:
        raise BlursynthError(
            f"was trained on dataset {str(saved_sha)[:12]}, not on this one "
            f"({manifest_sha256[:12]}); pass --force to resume anyway",
            path,
        )
    try:
        model.load_state_dict(payload["model_state"])
        optimizer.load_state_dict(payload["optimizer_state"])
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
    state = {k: v for k, v in extra.items() if k not in ("rng", "manifest_sha256")}
    state["iteration"] = payload["iteration"]
    return state


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [{**r, "iteration": int(r["iteration"])} for r in read_log(path)]


def _write_logs(out: Path, rows: list[dict], tb, title: str) -> None:
    """Rewrite ``log.csv`` and ``curves.png`` (one row per evaluation: small); add the last
    row to TensorBoard."""
    lines = [",".join(LOG_FIELDS)]
    for r in rows:
        lines.append(
            ",".join(str(int(r[k])) if k == "iteration" else f"{r[k]:.6g}" for k in LOG_FIELDS)
        )
    write_text(out / "log.csv", "\n".join(lines) + "\n")
    plot_curves(rows, out / "curves.png", title=title)
    if tb is not None:
        for key in LOG_FIELDS[1:]:
            tb.add_scalar(key, rows[-1][key], rows[-1]["iteration"])
        tb.flush()


def _progress_line(row: dict, iterations: int, batch_size: int) -> str:
    it = int(row["iteration"])
    eta_h = (iterations - it) * batch_size / max(row["samples_per_s"], 1e-9) / 3600
    return (
        f"it {it}/{iterations}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  lr {row['lr']:.2e}  "
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
