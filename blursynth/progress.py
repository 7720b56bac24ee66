"""One progress wrapper for every long loop (``quiet=True`` silences it), and :func:`warn`
for what a user must read before a long step runs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import click


@contextmanager
def progressbar(
    iterable: Iterable | None = None,
    *,
    length: int | None = None,
    label: str = "",
    quiet: bool = False,
    show_item: bool = False,
) -> Iterator:
    """A :func:`click.progressbar` on stderr, or a silent pass-through when ``quiet``.

    With ``show_item``, the text passed as ``bar.update(n, text)`` is shown after the bar
    (a running loss, a rate).
    """
    if quiet:
        yield _Silent(iterable)
        return
    with click.progressbar(
        iterable,
        length=length,
        label=label,
        file=sys.stderr,
        show_pos=True,
        show_eta=True,
        item_show_func=(lambda text: text) if show_item else None,
    ) as bar:
        yield bar


class _Silent:
    def __init__(self, iterable):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: int = 1, current_item=None) -> None:
        pass


def warn(message: str) -> None:
    """``warning: MESSAGE`` on stderr, now (``quiet`` does not silence it)."""
    click.echo(f"warning: {message}", err=True)
