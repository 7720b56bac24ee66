"""Readers: paths in, arrays out. ``__init__`` resolves and checks paths; ``load`` decodes."""

from __future__ import annotations

from dataclasses import replace

from blursynth.errors import BlursynthError
from blursynth.schema import SOURCE_KINDS
from blursynth.sources.folder import BlurItem, FolderSource
from blursynth.sources.shi import ShiSource
from blursynth.sources.synth import SynthSource

SOURCES = dict(zip(SOURCE_KINDS, (ShiSource, SynthSource, FolderSource), strict=True))
EVAL_SPLITS = ("eval", "val", "train")


def open_source(kind: str, root, **options):
    """Open a folder of images with blur masks.

    Parameters
    ----------
    kind : {"shi", "synth", "folder"}
        ``shi``: the CUHK blur detection dataset (Shi et al. 2014); ``synth``: the output of
        ``blursynth generate``; ``folder``: any ``image/`` + ``gt/`` pair (see
        :class:`FolderSource` for polarity and threshold options).
    root : path
    **options
        Passed to the source class.
    """
    if kind not in SOURCES:
        raise BlursynthError(f"unknown source {kind!r}; choose one of {', '.join(SOURCES)}")
    return SOURCES[kind](root, **options)


def open_items(kind: str, root, *, stems=None, blur_type: str | None = None, **options):
    """Open a source and list its items: ``(source, items)``.

    The one way from a source description (as a dataset's parameters or ``eval.json`` record
    it) to images: datasets are built from it and their images are reopened through it.

    Parameters
    ----------
    kind : {"shi", "synth", "folder"}
    root : path
    stems : sequence of str, optional
        Keep these items, in this order (every one must exist); default all, in source order.
    blur_type : {"motion", "defocus"}, optional
        Given to every item (a ``folder`` source of one blur type).
    **options
        ``polarity`` and ``threshold`` of a ``folder`` source.

    Raises
    ------
    BlursynthError
        Unknown kind, options given to a source that takes none, or a stem not in ``root``.
    """
    if kind not in SOURCES:
        raise BlursynthError(f"unknown source {kind!r}; choose one of {', '.join(SOURCES)}")
    if kind != "folder" and (options or blur_type):
        raise BlursynthError("--polarity/--threshold/--blur-type apply to --source folder only")
    source = open_source(kind, root, **options)
    items = list(source.items)
    if stems is not None:
        by_stem = {it.stem: it for it in items}
        missing = [stem for stem in stems if stem not in by_stem]
        if missing:
            raise BlursynthError(
                f"{len(missing)} image(s) the dataset names are not in the source "
                f"(e.g. {missing[0]!r})",
                root,
            )
        items = [by_stem[stem] for stem in stems]
    if blur_type:
        items = [replace(it, blur_type=blur_type) for it in items]
    return source, items


def open_dataset_images(folder, split: str = "eval"):
    """The whole images behind a dataset's split: ``(source, items)``.

    Parameters
    ----------
    folder : path
        A dataset folder (``manifest.json`` and ``eval.json``).
    split : {"eval", "val", "train"}
        ``eval``: the held-out images listed in ``eval.json``; ``val`` / ``train``: the images
        whose rows form that split (per the manifest). Choose settings on ``val`` images and
        report on ``eval`` images, which no choice has seen.
    """
    from pathlib import Path

    from blursynth.schema import EVAL_LIST, MANIFEST, EvalList, Manifest, resolve_root

    folder = Path(folder)
    if split not in EVAL_SPLITS:
        raise BlursynthError(f"split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    spec = EvalList.read(folder / EVAL_LIST)
    if split == "eval":
        stems = [it.stem for it in spec.items]
    else:
        manifest, _ = Manifest.read(folder / MANIFEST)
        stems = manifest.stems(split)
        if not stems:
            raise BlursynthError(f"the manifest lists no {split} image", folder / MANIFEST)
    root = resolve_root(spec.root, folder)
    return open_items(spec.source, root, stems=stems, **spec.options)


__all__ = [
    "BlurItem",
    "FolderSource",
    "ShiSource",
    "SynthSource",
    "SOURCES",
    "open_dataset_images",
    "open_items",
    "open_source",
]
