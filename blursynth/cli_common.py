"""What the ``blursynth`` and ``blursynth_train`` commands share: domain errors as one-line
messages (and Ctrl-C as a resume hint), and the options every builder takes."""

from __future__ import annotations

import functools

import click

from blursynth.errors import BlursynthError, os_reason
from blursynth.parallel import BACKENDS


def domain_errors(fn):
    """Turn :class:`BlursynthError`, and the OSError of an unwritable or full output, into a
    one-line CLI error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BlursynthError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # unwritable, full or missing output: name the path, one line
            raise click.ClickException(os_error_message(exc)) from None
        except KeyboardInterrupt:  # Ctrl-C: say how to finish, not only "Aborted!"
            ctx = click.get_current_context(silent=True)
            how = RESUME_HINTS.get(ctx.info_name if ctx else "", "run the same command again")
            click.echo(f"\nInterrupted: {how} to finish; nothing written is lost.", err=True)
            raise SystemExit(130) from None

    return wrapper


RESUME_HINTS = {
    "generate": "run the same command with --resume",
    "patches": "run the same command again (finished shards are reused)",
    "tiles": "run the same command again (finished shards are reused)",
}
"""What finishes an interrupted command (``domain_errors``' Ctrl-C message)."""


def os_error_message(exc: OSError) -> str:
    """``PATH: the disk is full: No space left on device`` from an OSError, in one line (a
    write that names no file is caught where the file is known: ``imageio.atomic_path``)."""
    where = exc.filename if exc.filename is not None else "output"
    return f"{where}: {os_reason(exc)}"


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
force_option = click.option(
    "--force",
    is_flag=True,
    help="Replace a finished dataset of another kind or other settings in --out, or build "
    "into a folder holding other files.",
)


def backend_options(fn):
    """``--backend local|dask`` and ``--scheduler ADDRESS``, passed on as ``backend``: a
    :class:`blursynth.parallel.Backend` (its checks give the one-line errors)."""

    @click.option(
        "--backend",
        "backend_name",
        type=click.Choice(BACKENDS),
        default="local",
        show_default=True,
        help="Where workers run: local processes, or a dask.distributed cluster (the output "
        "is the same bytes; needs blursynth[cluster]).",
    )
    @click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="--backend dask: the scheduler's address, e.g. tcp://10.0.0.5:8786. Workers "
        "must see the source and --out folders at the same paths.",
    )
    @functools.wraps(fn)
    def wrapper(*args, backend_name, scheduler, **kwargs):
        from blursynth.parallel import Backend

        try:
            backend = Backend(backend_name, scheduler)
        except BlursynthError as exc:
            raise click.UsageError(str(exc)) from None
        return fn(*args, backend=backend, **kwargs)

    return wrapper


def range_option(flag: str, help: str):
    """An option that takes a range, ``FLAG LO HI`` (two floats; None when not given)."""
    return click.option(flag, type=(float, float), default=None, metavar="LO HI", help=help)
