"""Scores of a blur map against a ground-truth mask (pure numpy).

Conventions
-----------
* ``prob`` is a float map ``(H, W)`` in [0, 1], the "blur-ness" of each pixel; ``gt`` is a
  bool mask ``(H, W)``, True where blurred.
* A map is binarised as ``prob >= threshold`` (blurred).
* The adaptive threshold is ``min(2 * mean(prob), 1)`` (Achanta et al. 2009); an all-zero map
  gets a threshold just above 0, so it predicts no blurred pixel.
* Empty-class rule: when a class is absent from both prediction and ground truth, its IoU is
  1 (nothing to find, nothing found); the F-measure is 1 when neither the prediction nor the
  ground truth has a blurred pixel, and 0/0 precision or recall otherwise count as 0.

Example
-------
>>> gt = np.array([[True, True], [False, False]])
>>> prob = np.array([[0.9, 0.2], [0.7, 0.1]])
>>> round(iou(prob >= 0.5, gt), 3)
0.333
"""

from __future__ import annotations

import numpy as np

BETA2 = 0.3
METRICS = ("iou", "miou", "accuracy", "f_beta", "f_beta_adaptive", "mae")
"""Keys of :func:`score_map`, in table order."""

SUMMARY_METRICS = (*METRICS, "iou_pooled")
"""Columns of a summary: the per-image means, then the blurred-class IoU pooled over every
pixel of the group (as the defocus literature reports it)."""
CLASS_NAMES = ("sharp", "motion", "defocus")
CLASS_METRICS = (
    "iou_sharp",
    "iou_motion",
    "iou_defocus",
    "type_accuracy",
    *(f"iou_{name}_pooled" for name in CLASS_NAMES),
)
"""Scores of a 3-class (sharp / motion / defocus) map: :func:`score_classes`, per image;
then each class's IoU pooled over every pixel of the group (:func:`average`)."""

METRIC_TITLES = {
    "iou_pooled": "IoU pooled",
    "iou_sharp": "IoU sharp",
    "iou_motion": "IoU motion",
    "iou_defocus": "IoU defocus",
    "type_accuracy": "blur-type acc.",
    "iou_sharp_pooled": "IoU sharp pooled",
    "iou_motion_pooled": "IoU motion pooled",
    "iou_defocus_pooled": "IoU defocus pooled",
    "iou": "IoU (blurred)",
    "miou": "mean IoU",
    "accuracy": "pixel acc.",
    "f_beta": "F0.3 @0.5",
    "f_beta_adaptive": "F0.3 @adapt.",
    "mae": "MAE",
}


def confusion(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """Counts ``(tp, fp, fn, tn)`` of the blurred class for two bool masks of one shape."""
    pred, gt = _check_pair(pred, gt)
    if pred.dtype != bool:
        raise ValueError(f"prediction must be bool, got {pred.dtype}")
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred & ~gt))
    fn = int(np.count_nonzero(~pred & gt))
    return tp, fp, fn, pred.size - tp - fp - fn


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of the blurred class; 1.0 when neither mask has blur."""
    tp, fp, fn, _ = confusion(pred, gt)
    return _ratio(tp, tp + fp + fn, empty=1.0)


def mean_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of the blurred-class and sharp-class IoU (each 1.0 when its class is absent)."""
    tp, fp, fn, tn = confusion(pred, gt)
    return 0.5 * (_ratio(tp, tp + fp + fn, 1.0) + _ratio(tn, tn + fp + fn, 1.0))


def pixel_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of pixels whose class is right."""
    tp, fp, fn, tn = confusion(pred, gt)
    return _ratio(tp + tn, tp + fp + fn + tn, 1.0)


def f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = BETA2) -> float:
    """F-measure of the blurred class, ``(1 + b2) P R / (b2 P + R)``.

    1.0 when neither mask has a blurred pixel; 0/0 precision or recall count as 0.
    """
    tp, fp, fn, _ = confusion(pred, gt)
    if tp + fp + fn == 0:
        return 1.0
    precision, recall = _ratio(tp, tp + fp, 0.0), _ratio(tp, tp + fn, 0.0)
    denom = beta2 * precision + recall
    return 0.0 if denom == 0 else (1 + beta2) * precision * recall / denom


def adaptive_threshold(prob: np.ndarray) -> float:
    """``min(2 * mean(prob), 1)``, at least the smallest positive float64."""
    t = 2.0 * float(np.mean(prob, dtype=np.float64))
    return min(max(t, np.finfo(np.float64).tiny), 1.0)


def mae(prob: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference between the map and the 0/1 mask."""
    prob, gt = _check_pair(prob, gt)
    return float(np.mean(np.abs(prob.astype(np.float64) - gt)))


def score_map(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """All scores of one map, keyed as :data:`METRICS`.

    Parameters
    ----------
    prob : float array (H, W) in [0, 1]
        Blur-ness (probability of "blurred").
    gt : bool array (H, W)
        True where blurred.
    threshold : float
        Binarisation threshold of ``iou``, ``miou``, ``accuracy`` and ``f_beta``.
    """
    prob, gt = _check_pair(prob, gt)
    if prob.size and not (np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1):
        # NaN would silently count as "sharp" at every threshold and make the MAE NaN
        raise ValueError(f"prob must be finite and lie in [0, 1], got [{prob.min()}, {prob.max()}]")
    pred = prob >= threshold
    tp, fp, fn, tn = confusion(pred, gt)
    return {
        "iou": iou(pred, gt),
        "miou": mean_iou(pred, gt),
        "accuracy": pixel_accuracy(pred, gt),
        "f_beta": f_measure(pred, gt),
        "f_beta_adaptive": f_measure(prob >= adaptive_threshold(prob), gt),
        "mae": mae(prob, gt),
        "counts": [tp, fp, fn, tn],
    }


def score_classes(class_probs: np.ndarray, gt: np.ndarray, blur_type: str) -> dict[str, float]:
    """Per-class IoU and the blur-type call of a 3-class map against a binary mask.

    Parameters
    ----------
    class_probs : float array (3, H, W)
        Probabilities of sharp, motion, defocus.
    gt : bool array (H, W)
        True where blurred; its blurred pixels are of ``blur_type`` (one per image, as in
        CUHK), so the true class map is 0 / 1 (motion) / 2 (defocus).
    blur_type : {"motion", "defocus"}

    Returns
    -------
    dict
        ``iou_sharp``, ``iou_motion``, ``iou_defocus`` (1.0 for a class absent from both) and
        ``type_accuracy``: 1.0 when the image's blur type is the one with more probability
        mass over its truly blurred pixels (over all pixels if it has none), else 0.0; and
        ``class_counts``, each class's ``[intersection, union]`` in pixels, which
        :func:`average` pools.

    Notes
    -----
    A class absent from the truth and the prediction scores 1 per image, so the per-image
    mean of ``iou_motion`` over defocus images rewards a model that never says motion; the
    pooled IoU (``iou_motion_pooled`` from :func:`average`) has no such case.
    """
    if class_probs.ndim != 3 or class_probs.shape[0] != 3:
        raise ValueError(f"class_probs must be (3, H, W), got {class_probs.shape}")
    _check_pair(class_probs[0], gt)
    if blur_type not in ("motion", "defocus"):
        raise ValueError(f"blur_type must be motion or defocus, got {blur_type!r}")
    truth = gt.astype(np.uint8) * (1 if blur_type == "motion" else 2)
    pred = class_probs.argmax(0)
    out = {}
    counts = []
    for k, name in enumerate(CLASS_NAMES):
        inter = int(np.count_nonzero((pred == k) & (truth == k)))
        union = int(np.count_nonzero((pred == k) | (truth == k)))
        out[f"iou_{name}"] = _ratio(inter, union, 1.0)
        counts.append([inter, union])
    where = gt if gt.any() else np.ones_like(gt)
    motion, defocus = class_probs[1][where].sum(), class_probs[2][where].sum()
    out["type_accuracy"] = float((motion > defocus) == (blur_type == "motion"))
    out["class_counts"] = counts
    return out


def average(scores: list[dict[str, float]]) -> dict[str, float]:
    """Per-key mean over images (every image weighs the same); ``{}`` for no images.

    Confusion ``counts`` (from :func:`score_map`) are summed instead, into ``iou_pooled``:
    the blurred-class IoU of all the images' pixels together; and ``class_counts`` (from
    :func:`score_classes`) into ``iou_sharp_pooled``, ``iou_motion_pooled`` and
    ``iou_defocus_pooled``.
    """
    if not scores:
        return {}
    out = {
        key: float(np.mean([s[key] for s in scores if key in s]))
        for key in scores[0]
        if key not in ("counts", "class_counts")
    }
    if all("counts" in s for s in scores):
        tp, fp, fn, _ = np.sum([s["counts"] for s in scores], axis=0)
        out["iou_pooled"] = _ratio(int(tp), int(tp + fp + fn), 1.0)
    if all("class_counts" in s for s in scores):
        totals = np.sum([s["class_counts"] for s in scores], axis=0)
        for name, (inter, union) in zip(CLASS_NAMES, totals, strict=True):
            out[f"iou_{name}_pooled"] = _ratio(int(inter), int(union), 1.0)
    return out


def _ratio(num: int, den: int, empty: float) -> float:
    return empty if den == 0 else num / den


def _check_pair(a: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, gt = np.asarray(a), np.asarray(gt)
    if a.shape != gt.shape:
        raise ValueError(f"map and mask shapes differ: {a.shape} vs {gt.shape}")
    if gt.dtype != bool:
        raise ValueError(f"mask must be bool, got {gt.dtype}")
    return a, gt
