"""Score models and baselines on whole images with blur masks.

Every method produces a blur map in [0, 1] per image (models: through the
:class:`~blursynth_train.predict.Predictor`, which also gives a 3-class model's class
probabilities; baselines: :func:`blursynth.baselines.blur_map`);
:func:`blursynth.metrics.score_map` scores it; scores are averaged over images (each image
weighs the same) for the groups ``motion``, ``defocus`` and ``all`` (images of unknown
blur type count in ``all`` only). The trivial "everything blurred" map is always scored as
``all-blurred``.

Result (``results.json``)::

    {"settings": {...}, "methods": [{"name", "kind", "spec"}],
     "images": [{"stem", "blur_type", "height", "width", "blurred_fraction",
                 "scores": {METHOD: {METRIC: value}}}],
     "summary": {METHOD: {GROUP: {"n": images, METRIC: mean}}}}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blursynth import baselines, metrics
from blursynth.errors import BlursynthError
from blursynth.imageio import to_u8, write_json, write_text
from blursynth.postprocess import POSTPROCESS
from blursynth.postprocess import postprocess as apply_postprocess
from blursynth.progress import progressbar
from blursynth_train.choices import TTA

GROUPS = ("motion", "defocus", "all")
TRIVIAL = "all-blurred"
THRESHOLD = 0.5
TRAIN_TYPES = {"motion": "motion", "defocus": "defocus", "both": "all"}
"""Table 1: a model trained on TYPE is scored on the evaluation group of that type."""


@dataclass(frozen=True)
class Method:
    """One thing to score: a checkpoint (``kind="model"``) or a baseline name."""

    name: str
    kind: str
    spec: str


def parse_model_spec(spec: str) -> Method:
    """``NAME=PATH`` or ``PATH`` (named after the file stem) -> :class:`Method`.

    ``PATH`` may be ``bundled``: the shipped weights (named ``bundled`` unless NAME is given).
    """
    if "=" in spec and not Path(spec).is_file():
        name, path = spec.split("=", 1)
        if not name or not path:
            raise BlursynthError(f"--model expects NAME=PATH or PATH, got {spec!r}")
    else:
        name, path = Path(spec).stem, spec
    from blursynth_train.weights import resolve_weights

    return Method(name, "model", str(resolve_weights(path)))


def build_methods(models: list[str] = (), baseline_names: list[str] = ()) -> list[Method]:
    """Methods from ``--model`` specs and ``--baseline`` names, plus the trivial answer."""
    methods = [parse_model_spec(s) for s in models]
    for b in baseline_names:
        if b not in baselines.BASELINES:
            raise BlursynthError(
                f"unknown baseline {b!r}; choose from {', '.join(baselines.BASELINES)}"
            )
        methods.append(Method(b, "baseline", b))
    if not methods:
        raise BlursynthError("nothing to evaluate: give --model and/or --baseline")
    if TRIVIAL not in [m.name for m in methods]:
        methods.append(Method(TRIVIAL, "baseline", TRIVIAL))
    names = [m.name for m in methods]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BlursynthError(
            f"method names must be unique; repeated: {', '.join(dupes)} (name models as NAME=PATH)"
        )
    return methods


def open_eval_images(
    dataset=None, source: str | None = None, root=None, *, split: str = "eval", **options
):
    """``(source, items)``: a dataset's held-out images (or the whole images of its
    ``split``: :func:`blursynth.sources.open_dataset_images`), or every image of a source."""
    if (dataset is None) == (source is None):
        raise BlursynthError("give either --dataset DIR or --source KIND --root DIR")
    if dataset is not None:
        from blursynth.sources import open_dataset_images

        return open_dataset_images(dataset, split)
    if split != "eval":
        raise BlursynthError("--split applies to --dataset only")
    if root is None:
        raise BlursynthError("--source needs --root DIR")
    from blursynth.sources import open_source

    src = open_source(source, root, **options)
    return src, list(src.items)


def score_images(
    methods: list[Method],
    source,
    items,
    *,
    device: str = "auto",
    stride: int = 1,
    postprocess: str | Sequence[str] = "none",
    tta: str = "none",
    quiet: bool = False,
) -> dict:
    """Score every method on every image; see the module docstring for the result layout.

    Parameters
    ----------
    methods : list of Method
        Checkpoints are all loaded first, so a bad one fails before any work.
    source, items
        As returned by :func:`open_eval_images`.
    device : {"auto", "cpu", "cuda"}
    stride : {1, 2, 4}
        Model evaluation stride (1 = exact).
    postprocess : str or sequence of str
        Names from :data:`blursynth.postprocess.POSTPROCESS`. For each one but "none", every
        model is also scored as ``NAME+POSTPROCESS`` on its post-processed map
        (:func:`blursynth.postprocess.postprocess`), computed from the same probability map.
    tta : str
        Test-time augmentation of every model (:data:`blursynth_train.segment.TTA`).
    """
    chosen = _checked_settings(postprocess, tta)
    predictors = {m.name: _predictor(m, device, stride, tta) for m in methods}
    checkpoints = {m.name: m.spec for m in methods if m.kind == "model"}
    derived = {
        m.name: [(pp, f"{m.name}+{pp}") for pp in chosen] for m in methods if m.kind == "model"
    }
    names = [n for m in methods for n in [m.name] + [d for _, d in derived.get(m.name, [])]]
    images, skipped = [], []
    with progressbar(items, label="evaluate", quiet=quiet) as bar:
        for item in bar:
            try:
                image, gt = source.load(item)
            except BlursynthError as exc:  # a bad image is skipped and listed, not fatal
                skipped.append({"stem": item.stem, "reason": str(exc)})
                continue
            scores = _score_one(item, image, gt, predictors, derived, checkpoints)
            images.append(_image_entry(item, gt, scores))
    if not images:
        first = skipped[0]["reason"] if skipped else "no image given"
        raise BlursynthError(f"no image could be scored; first problem: {first}")
    settings = {"stride": stride, "tta": tta, "postprocess": ",".join(chosen) or "none"}
    return _results(methods, derived, images, skipped, names, settings)


def _results(methods, derived, images, skipped, names, settings) -> dict:
    """The result layout of :func:`score_images` (see the module docstring)."""
    return {
        "settings": {
            "threshold": THRESHOLD,
            "beta2": metrics.BETA2,
            **settings,
            "images": len(images),
        },
        "skipped": skipped,
        "methods": [{"name": m.name, "kind": m.kind, "spec": m.spec} for m in methods]
        + [
            {"name": d, "kind": "model", "spec": f"{_spec(methods, n)} +{pp}"}
            for n, pairs in derived.items()
            for pp, d in pairs
        ],
        "images": images,
        "summary": summarise(images, names),
    }


def _checked_settings(postprocess: str | Sequence[str], tta: str) -> list[str]:
    """The post-processing names to score besides the raw maps (each once, "none" dropped);
    an unknown name or test-time augmentation is an error."""
    chosen = [postprocess] if isinstance(postprocess, str) else list(postprocess)
    for pp in chosen:
        if pp not in POSTPROCESS:
            raise BlursynthError(f"post-processing must be one of {POSTPROCESS}, got {pp!r}")
    if tta not in TTA:
        raise BlursynthError(f"test-time augmentation must be one of {TTA}, got {tta!r}")
    return [pp for pp in dict.fromkeys(chosen) if pp != "none"]


def _image_entry(item, gt: np.ndarray, scores: dict) -> dict:
    """One image's entry of the results: what it is, its truth's size and share, its scores."""
    return {
        "stem": item.stem,
        "blur_type": item.blur_type,
        "height": int(gt.shape[0]),
        "width": int(gt.shape[1]),
        "blurred_fraction": float(gt.mean()),
        "scores": scores,
    }


def _score_one(item, image, gt, predictors: dict, derived: dict, checkpoints: dict) -> dict:
    """Every method's (and post-processed variant's) scores on one image."""
    scores = {}
    for name, fn in predictors.items():
        pred = fn(image)
        prob = pred.prob
        if not np.isfinite(prob).all():  # e.g. a diverged checkpoint: name it, no traceback
            raise BlursynthError(
                f"{name} gives non-finite blur probabilities on {item.image_path.name}",
                checkpoints.get(name),
            )
        scores[name] = metrics.score_map(prob, gt)
        if pred.classes is not None and item.blur_type in ("motion", "defocus"):
            scores[name].update(metrics.score_classes(pred.classes, gt, item.blur_type))
        for pp, derived_name in derived.get(name, []):
            scores[derived_name] = metrics.score_map(apply_postprocess(pp, image, prob), gt)
    return scores


def summarise(images: list[dict], names: list[str]) -> dict:
    """Mean scores per method and group, with the number of images ``n``."""
    out = {}
    for name in names:
        out[name] = {}
        for group in GROUPS:
            rows = [
                im["scores"][name] for im in images if group == "all" or im["blur_type"] == group
            ]
            out[name][group] = {"n": len(rows), **metrics.average(rows)}
    return out


def _spec(methods: list[Method], name: str) -> str:
    return next(m.spec for m in methods if m.name == name)


def _predictor(method: Method, device: str, stride: int, tta: str):
    """``image (float (H, W, 3) in [0, 1]) -> Prediction`` of a model or a baseline."""
    from blursynth_train.device import resolve_device
    from blursynth_train.predict import Prediction, Predictor, load_segmenter

    if method.kind == "baseline":
        return lambda image: Prediction(baselines.blur_map(image, method.spec))
    predictor = Predictor(
        load_segmenter(method.spec, resolve_device(device)), stride=stride, tta=tta
    )
    return lambda image: predictor([to_u8(image)])[0]


# --- reports ----------------------------------------------------------------------------------


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _cell(summary: dict, name: str, group: str, metric: str):
    return summary.get(name, {}).get(group, {}).get(metric)


def metrics_table(summary: dict) -> str:
    """Every metric for every method and group, as a Markdown table (3-class columns when a
    3-class model was scored)."""
    rows = [g for groups in summary.values() for g in groups.values()]
    keys = list(metrics.SUMMARY_METRICS)
    keys += [k for k in metrics.CLASS_METRICS if any(k in r for r in rows)]
    head = ["method", "group", "images"] + [metrics.METRIC_TITLES[k] for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, groups in summary.items():
        for group in GROUPS:
            row = groups[group]
            if not row["n"]:
                continue
            cells = [name, group, str(row["n"])] + [_fmt(row.get(k)) for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table2(summary: dict, metric: str = "iou") -> str:
    """Report Table 2: rows methods, columns motion / defocus / all."""
    lines = ["| method | motion | defocus | all |", "|---|---|---|---|"]
    for name in summary:
        cells = [_fmt(_cell(summary, name, g, metric)) for g in GROUPS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table1(summary: dict, metric: str = "iou") -> str | None:
    """Report Table 1: rows training data, columns training blur type; ``None`` if no model is
    named ``DATA/TYPE`` with TYPE in motion, defocus, both.

    The model ``DATA/TYPE`` is scored on the evaluation images of its own type (``both``: all).
    """
    cells: dict[str, dict[str, float | None]] = {}
    for name in summary:
        data, _, kind = name.rpartition("/")
        if data and kind in TRAIN_TYPES:
            cells.setdefault(data, {})[kind] = _cell(summary, name, TRAIN_TYPES[kind], metric)
    if not cells:
        return None
    lines = ["| training data | motion | defocus | both |", "|---|---|---|---|"]
    for data, row in cells.items():
        lines.append(f"| {data} | " + " | ".join(_fmt(row.get(k)) for k in TRAIN_TYPES) + " |")
    return "\n".join(lines)


ADAPTIVE_NOTE = (
    "Notes: *IoU pooled* is the blurred-class IoU over every pixel of the group (the defocus "
    "literature's number); the other columns are means over images. *F0.3 @adapt.* "
    "thresholds each map at min(2 x its mean, 1) (Achanta et al.): a map whose mean is 0.5 or "
    "more, as on mostly-blurred defocus images, gets threshold 1 and predicts almost no "
    "blurred pixel, so a 0.000 there is the definition at work, not a failed method."
)


def report_markdown(result: dict) -> str:
    """The Markdown report: Table 1 (when models are named DATA/TYPE), Table 2, all metrics."""
    summary = result["summary"]
    s = result["settings"]
    parts = [
        f"# Evaluation ({s['images']} images, threshold {s['threshold']}, "
        f"model stride {s['stride']}, test-time augmentation {s.get('tta', 'none')})",
        "",
    ]
    t1 = table1(summary)
    if t1:
        parts += [
            "## Table 1: IoU of the blurred class by training data and blur type",
            "",
            "Model `DATA/TYPE` scored on the images of its own blur type (both: all).",
            "",
            t1,
            "",
        ]
    parts += [
        "## Table 2: IoU of the blurred class",
        "",
        table2(summary),
        "",
        f"`{TRIVIAL}` is the trivial answer (every pixel blurred): a method must beat it.",
        "",
        "## All metrics (means over images)",
        "",
        metrics_table(summary),
        "",
        ADAPTIVE_NOTE,
        "",
    ]
    if result.get("skipped"):
        parts += [f"## Skipped ({len(result['skipped'])} unreadable images)", ""]
        parts += [f"- {s['stem']}: {s['reason']}" for s in result["skipped"]] + [""]
    return "\n".join(parts)


def write_report(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    write_json(json_path, _plain(result))
    write_text(md_path, report_markdown(result))
    return json_path, md_path


def _plain(obj):
    """JSON-ready copy (numpy scalars -> Python)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
