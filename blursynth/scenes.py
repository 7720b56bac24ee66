"""The scenes ``generate`` draws from: the VOC split and object-mask folders as one
:class:`~blursynth.sources.objects.SceneSources`, their scan (usable items, skipped ones),
the sharp-background pool, and what ``sources.json`` says of them."""

from __future__ import annotations

from pathlib import Path

from joblib import delayed

import blursynth
from blursynth.baselines import background_sharpness
from blursynth.errors import BlursynthError
from blursynth.parallel import run_tasks
from blursynth.progress import progressbar
from blursynth.sources.objects import ObjectFolder, SceneSources
from blursynth.sources.voc import (
    MIN_CLASS_FRACTION,
    VOCItem,
    VOCSegmentation,
    resolve_voc_root,
)
from blursynth.workers import die_with_parent


def default_voc_root() -> Path:
    """The embedded VOC sample shipped in the repository (``datasets/embedded``)."""
    root = Path(blursynth.__file__).resolve().parent.parent / "datasets" / "embedded"
    if not root.is_dir():
        raise BlursynthError(
            "the embedded VOC sample is not there (it ships with a source checkout); "
            "pass --voc PATH to a VOCdevkit",
            root,
        )
    return root


SOURCES_FILE = "sources.json"
EMBEDDED_LICENCE = "CC0 1.0 / public domain (datasets/embedded/README.md)"
OTHER_LICENCE = "that of the source photographs (not checked by blursynth)"


def source_entries(voc, split: str, objects) -> list[dict]:
    """What ``sources.json`` says: each source folder of a run (its name: a card names no
    path of the machine that built it), its kind and its licence (known for the embedded
    sample only), for the cards of datasets built from the run."""
    entries = []
    root = voc_root(voc, objects)
    if root is not None:
        embedded = voc is None
        root = resolve_voc_root(root)  # .../VOC2012
        name = root.parent.parent.name if root.parent.name == "VOCdevkit" else root.name
        entries.append(
            {
                "kind": "voc",
                "root": "embedded sample" if embedded else name,
                "split": split,
                "licence": EMBEDDED_LICENCE if embedded else OTHER_LICENCE,
            }
        )
    entries += [
        {"kind": "objects", "root": Path(d).resolve().name, "licence": OTHER_LICENCE}
        for d in objects
    ]
    return entries


def voc_root(voc, objects):
    """The VOC tree a run draws from: ``voc`` if given, the embedded sample if neither
    ``voc`` nor ``objects`` is, else None (object folders only)."""
    if voc is not None:
        return voc
    return None if objects else default_voc_root()


def scene_sources(
    voc=None,
    split: str = "train",
    objects=(),
    object_threshold: int = 128,
    object_polarity: str = "object-white",
) -> SceneSources:
    """The scene sources of a run: the VOC split (the embedded sample when neither ``voc``
    nor ``objects`` is given) and the object-mask folders, as one
    (:class:`~blursynth.sources.objects.SceneSources`)."""
    root = voc_root(voc, objects)
    parts = [] if root is None else [VOCSegmentation(root, split)]
    parts += [
        ObjectFolder(d, threshold=object_threshold, polarity=object_polarity) for d in objects
    ]
    return SceneSources(parts)


def scan(
    voc: SceneSources,
    *,
    jobs: int = 1,
    quiet: bool = False,
    min_fraction: float = MIN_CLASS_FRACTION,
) -> tuple[list[VOCItem], list[dict]]:
    """Check every item of the split; return usable items and the skipped ones."""
    tasks = (delayed(_scan_one)(voc, image_id, min_fraction) for image_id in voc.ids)
    items, bad = [], []
    with progressbar(length=len(voc.ids), label="scan sources", quiet=quiet) as bar:
        results = run_tasks(tasks, jobs=jobs)  # in order
        for image_id, result in zip(voc.ids, results, strict=True):
            if isinstance(result, VOCItem):
                items.append(result)
            else:
                bad.append({"id": image_id, **result})
            bar.update(1)
    return items, bad


def sharp_backgrounds(
    voc: SceneSources, items: list[VOCItem], threshold: float, *, jobs: int = 1, quiet=False
) -> list[int]:
    """Indices of the ``items`` whose background (the pixels labelled 0: neither object nor
    class) has :func:`blursynth.baselines.background_sharpness` >= ``threshold``; an item
    that cannot be decoded is not kept."""
    tasks = (delayed(_background_sharpness)(voc, it.id) for it in items)
    with progressbar(length=len(items), label="measure backgrounds", quiet=quiet) as bar:
        keep = []
        for k, score in enumerate(run_tasks(tasks, jobs=jobs)):  # in order
            if score >= threshold:
                keep.append(k)
            bar.update(1)
    return keep


def _background_sharpness(voc, image_id) -> float:
    die_with_parent()
    try:
        image, labels = voc.load(image_id)
    except BlursynthError:
        return -1.0
    return background_sharpness(image, labels == 0)


def _scan_one(voc, image_id, min_fraction):
    die_with_parent()
    try:
        return voc.scan_one(image_id, min_fraction)
    except BlursynthError as exc:
        return {"file": str(exc.path), "reason": exc.reason}
