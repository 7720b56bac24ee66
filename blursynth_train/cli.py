"""``blursynth_train``: thin click commands over fit, segment and evaluate."""

from __future__ import annotations

import click

from blursynth_train import __version__

# Shared helpers from the data package: one error policy, one progress wrapper.
from blursynth.cli import domain_errors, quiet_option  # noqa: F401


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blursynth_train")
def main():
    """Train, apply and score the blur-segmentation CNN."""


# --- fit (issue 4) ------------------------------------------------------------------------


# --- segment (issue 4) --------------------------------------------------------------------


# --- evaluate (issue 4) -------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()
