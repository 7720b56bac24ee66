"""Readers: paths in, arrays out. ``__init__`` resolves and checks paths; ``load`` decodes."""

from blursynth.sources.folder import BlurItem, FolderSource
from blursynth.sources.shi import ShiSource, SynthSource

SOURCES = {"shi": ShiSource, "synth": SynthSource, "folder": FolderSource}


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
    from blursynth.errors import BlursynthError

    if kind not in SOURCES:
        raise BlursynthError(f"unknown source {kind!r}; choose one of {', '.join(SOURCES)}")
    return SOURCES[kind](root, **options)


__all__ = ["BlurItem", "FolderSource", "ShiSource", "SynthSource", "SOURCES", "open_source"]
