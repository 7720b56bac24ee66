"""What the training loop optimises and measures: the loss of a batch and the numbers of a
validation pass. Pure functions of tensors (no run state, no I/O), for patch labels ``(N,)``
and dense label maps ``(N, H, W)`` alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = 255
"""Label value that no loss or accuracy counts (the padding of dense label maps)."""


def training_loss(
    logits: torch.Tensor, labels: torch.Tensor, kind: str = "ce", weight=None
) -> torch.Tensor:
    """The loss ``kind`` (:attr:`FitConfig.loss`) of ``logits`` ``(N, C[, H, W])`` against
    ``labels`` ``(N[, H, W])``; :data:`IGNORE` labels count in neither term."""
    logits = logits.float()
    loss = F.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE)
    if kind == "ce+dice":
        loss = loss + soft_dice_loss(logits, labels)
    return loss


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0):
    """One minus the mean over classes of the soft Dice coefficient
    ``(2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth)`` over all labelled pixels of the
    batch (Milletari et al. 2016), ``p`` the softmax probability and ``g`` the one-hot label."""
    valid = labels != IGNORE
    prob = logits.float().softmax(1)
    target = F.one_hot(torch.where(valid, labels, 0), logits.shape[1]).movedim(-1, 1)
    mask = valid.unsqueeze(1)
    dims = (0, *range(2, logits.ndim))
    inter = (prob * target * mask).sum(dims)
    total = ((prob + target) * mask).sum(dims)
    return 1.0 - ((2.0 * inter + smooth) / (total + smooth)).mean()


@dataclass(frozen=True)
class Validation:
    """What :func:`validate` measures over the validation rows."""

    loss: float
    """Mean cross-entropy per labelled pixel (patch)."""
    accuracy: float
    """Share of labelled pixels (patches) classified right."""
    miou: float
    """Mean over classes of the IoU pooled over all labelled pixels (classes that occur in
    neither labels nor predictions are left out)."""


@torch.no_grad()
def validate(model: nn.Module, batches, bf16: bool = False) -> Validation:
    """Loss, accuracy and pooled mean IoU of ``model`` (in eval mode) over ``batches``.

    Works for patch labels ``(N,)`` and dense label maps ``(N, H, W)`` alike; labels equal
    to :data:`IGNORE` count in none. One confusion matrix is summed on the device, and read
    back once.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = None
    for x, y in batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="sum")
        k = logits.shape[1]
        # (label, prediction) as one bin index; unlabelled pixels go to a spare last bin
        pairs = torch.where(y == IGNORE, k * k, y * k + logits.argmax(1))
        counts = torch.bincount(pairs.flatten(), minlength=k * k + 1)[: k * k].reshape(k, k)
        confusion = counts if confusion is None else confusion + counts
    model.train(was_training)
    if confusion is None:
        return Validation(math.nan, math.nan, math.nan)
    confusion = confusion.double().cpu()
    count = max(float(confusion.sum()), 1.0)
    hits = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - hits
    present = union > 0
    miou = float((hits[present] / union[present]).mean()) if bool(present.any()) else math.nan
    return Validation(loss_sum.item() / count, float(hits.sum()) / count, miou)
