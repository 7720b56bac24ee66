"""A run's state across checkpoints: the loop state (:class:`TrainState`), starting or
resuming (:func:`start_or_resume`, :func:`restore`), weights from another checkpoint
(:func:`initialise`), the RNG states, and the exponential moving average of the weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from blursynth.errors import BlursynthError
from blursynth_train.checkpoint import load_checkpoint
from blursynth_train.data import TrainingData
from blursynth_train.recipe import FitConfig
from blursynth_train.runlog import read_rows


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


def start_or_resume(cfg: FitConfig, model, optimizer, data: TrainingData, say, ema=None):
    """The loop state and log rows to start from: ``last.pt``'s on resume, else fresh.

    A fresh start refuses a run folder that already holds a run unless ``force``.
    """
    out = Path(cfg.out)
    if cfg.resume:
        state = restore(out / "last.pt", model, optimizer, data, cfg.force, ema)
        rows = [r for r in read_rows(out / "log.csv") if r["iteration"] <= state.iteration]
        say(f"resuming {out} at iteration {state.iteration}")
        return state, rows
    if (out / "last.pt").exists() and not cfg.force:
        raise BlursynthError(
            "already holds a run (last.pt); pass --resume to continue it or --force to start over",
            out,
        )
    return TrainState(), []


def weight_average(model: nn.Module, decay: float) -> AveragedModel:
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
    """The decay of the ``n``-th update after the first (see :func:`weight_average`);
    ``n`` an int, or a tensor (the result is then a tensor on its device)."""
    warm = (1.0 + n) / (10.0 + n)
    return warm.clamp(max=decay) if isinstance(warm, torch.Tensor) else min(decay, warm)


def trained_weights(model: nn.Module, ema: AveragedModel) -> dict:
    """The checkpoint entries an ``--ema`` run adds: the trained weights and the count of
    averaged steps."""
    return {
        "train_model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema_n_averaged": int(ema.n_averaged),
    }


def previous_data_path(out: Path, default: bool) -> bool:
    """The resolved data path (resident or not) recorded in a run's ``config.json``."""
    try:
        previous = json.loads((out / "config.json").read_text()).get("data_on_device")
    except (OSError, ValueError, AttributeError):
        return default
    return previous if isinstance(previous, bool) else default


def initialise(model: nn.Module, path: str) -> None:
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


def rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(
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
