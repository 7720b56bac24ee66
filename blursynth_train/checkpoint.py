"""Checkpoints: model, optimizer, iteration, config, normalisation and dataset hash.

Saved with :func:`torch.save` as plain containers (tensors, dicts, lists, numbers, strings),
so :func:`torch.load` can always use ``weights_only=True``. Written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blursynth.errors import BlursynthError
from blursynth.imageio import atomic_path
from blursynth_train.models import config_from_dict, create_model

FORMAT = "blursynth-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    optimizer=None,
    iteration: int = 0,
    train_config: dict | None = None,
    extra: dict | None = None,
    half: bool = False,
) -> Path:
    """Write a checkpoint atomically.

    Parameters
    ----------
    model : nn.Module
        A model of a registered family (its ``config`` is stored).
    optimizer : torch.optim.Optimizer, optional
        Its state is stored for an exact ``--resume``.
    iteration : int
        Iterations done.
    train_config : dict, optional
        The training recipe (plain values only).
    extra : dict, optional
        Anything else plain: dataset manifest hash, metrics, RNG states.
    half : bool
        Store weights as float16 (for shipping; not for resuming).
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
        for k, v in model.state_dict().items()
    }
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "model_state": state,
        "iteration": int(iteration),
        "train_config": dict(train_config or {}),
        "extra": dict(extra or {}),
    }
    if optimizer is not None:
        payload["optimizer_state"] = optimizer.state_dict()
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except RuntimeError as exc:  # torch reports a full disk as "unexpected pos" or "enforce fail"
        raise BlursynthError(
            f"cannot write the checkpoint ({_write_failure(exc, path)})", path
        ) from None
    return Path(path)


def _write_failure(exc: RuntimeError, path: str | Path) -> str:
    """Why torch could not write ``path``: a full disk when it is (nearly) full, else the
    first line of torch's message."""
    import shutil

    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        free = None
    if free is not None and free < 64 * 2**20:
        return f"the disk is full: {free / 2**20:.1f} MB free"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint dict (``weights_only=True``); clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise BlursynthError("checkpoint not found", path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        # torch's messages run to many lines; the type is enough to tell corrupt from absent
        raise BlursynthError(
            f"not a readable checkpoint ({type(exc).__name__}); expected a"
            " file written by `blursynth_train fit`",
            path,
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BlursynthError("not a blursynth checkpoint (missing format tag)", path)
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise BlursynthError(
            f"checkpoint format {payload['format_version']} is newer than this blursynth_train"
            f" ({FORMAT_VERSION}); upgrade the package",
            path,
        )
    return payload


def load_model(path: str | Path, device="cpu") -> tuple[nn.Module, dict]:
    """Load a model for inference (eval mode, float32) and its checkpoint dict."""
    payload = load_checkpoint(path, map_location="cpu")
    try:
        model = create_model(config_from_dict(payload["model_config"]))
        state = {k: v.float() for k, v in payload["model_state"].items()}
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        # load_state_dict lists every mismatch on its own line: keep the first one
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
        more = f" (+{len(lines) - 2} more)" if len(lines) > 2 else ""
        raise BlursynthError(
            f"checkpoint does not match the model ({detail}{more})", path
        ) from None
    return model.to(device).eval(), payload


def export_weights(
    src: str | Path,
    dst: str | Path,
    *,
    half: bool = True,
    dataset: str | Path | Sequence[str | Path] | None = None,
) -> Path:
    """Strip a training checkpoint to what inference needs (float16 by default).

    Keeps the model config (with its normalisation), the weights, the iteration, the training
    recipe and the dataset hash; drops the optimizer and RNG states. With ``dataset`` (the
    patch dataset(s) it was trained on, in the order given to ``fit``, checked against the
    stored hash), the stems of their training images are kept as ``extra["train_images"]``
    (comma-separated), so users can tell which images the model has seen.
    """
    if Path(dst).resolve() == Path(src).resolve():
        raise BlursynthError(
            "export would overwrite its own source (a resumable checkpoint); give another --out",
            dst,
        )
    model, payload = load_model(src)
    bad = [
        k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()
    ]
    if bad:
        raise BlursynthError(
            f"holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]}): a diverged run; "
            "nothing exported",
            src,
        )
    extra = _plain_scalars(payload.get("extra", {}))
    if isinstance(payload.get("extra", {}).get("state"), dict):  # the loop state, less RNGs
        extra["state"] = _plain_scalars(payload["extra"]["state"])
    if dataset is not None:
        from blursynth.shards import open_dataset
        from blursynth_train.data import training_data_sha256

        folders = [dataset] if isinstance(dataset, str | Path) else list(dataset)
        hashes, stems = [], []
        for folder in folders:
            with open_dataset(folder) as ds:
                hashes.append(ds.manifest_sha256)
                stems += ds.manifest.stems("train")
        if extra.get("manifest_sha256") not in (None, training_data_sha256(hashes)):
            raise BlursynthError(
                "checkpoint was not trained on this dataset (manifest sha256 differs)",
                ", ".join(map(str, folders)),
            )
        extra["train_images"] = ",".join(stems)
    return save_checkpoint(
        dst,
        model,
        iteration=payload.get("iteration", 0),
        train_config=payload.get("train_config", {}),
        extra=extra,
        half=half,
    )


def _plain_scalars(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (str, int, float, bool))}
