"""``blursynth``: thin click commands. Each parses, calls one library function, reports.

Domain errors (:class:`blursynth.BlursynthError`) become one-line ``click.ClickException``
messages; tracebacks are for bugs only.
"""

from __future__ import annotations

import functools

import click

from blursynth import __version__
from blursynth.errors import BlursynthError


def domain_errors(fn):
    """Turn :class:`BlursynthError` into a one-line CLI error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BlursynthError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blursynth")
def main():
    """Synthetic blur data, patch datasets and their checks."""


# --- generate (issue 2) -------------------------------------------------------------------


# --- patches / info / verify (issue 3) ----------------------------------------------------


# --- preview (generate output or patch dataset) -------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()
