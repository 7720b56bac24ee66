"""Where the builders' tasks run: local worker processes, or a ``dask.distributed`` cluster.

Every parallel step of ``generate``, ``patches`` and ``tiles`` goes through
:func:`run_tasks`, a thin layer over :class:`joblib.Parallel`. :func:`use_backend` selects
joblib's backend for the length of a build: ``loky`` worker processes on this machine (the
default), or joblib's ``dask`` backend on a cluster reached at a scheduler address. Tasks
draw their randomness from their own seeded streams and the main process consumes results
in task order, so the output is byte-identical whatever the backend and the worker count.

A cluster's workers read the sources and write the output themselves (the decoded images
of :mod:`blursynth.decoded`, each whole shard of :mod:`blursynth.shards.assembly`, each
rendered image of ``generate``), so **every worker must see the source folder and the
output folder at the same absolute paths** as the machine that runs the command: a shared
file system (NFS, Lustre, CephFS, ...), mounted alike everywhere. No two workers write one
file. Workers that cannot share the output disk cannot run these builds;
:func:`use_backend` checks that the cluster's workers see the output and source folders
before any work is sent.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from blursynth.errors import BlursynthError

BACKENDS = ("local", "dask")
CONNECT_TIMEOUT_S = 30
_on_cluster = False  # inside use_backend(dask): joblib sizes the pool from the cluster


@dataclass(frozen=True)
class Backend:
    """Where tasks run: ``Backend()`` (local processes) or ``Backend("dask", "tcp://h:8786")``.

    Parameters
    ----------
    name : {"local", "dask"}
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler; required with ``dask``.
    """

    name: str = "local"
    scheduler: str | None = None

    def __post_init__(self):
        if self.name not in BACKENDS:
            raise BlursynthError(f"backend must be one of {BACKENDS}, got {self.name!r}")
        if self.name == "dask" and not self.scheduler:
            raise BlursynthError("--backend dask needs --scheduler ADDRESS (tcp://host:8786)")
        if self.name == "local" and self.scheduler:
            raise BlursynthError("--scheduler is for --backend dask; add --backend dask")


@contextmanager
def use_backend(backend: Backend | None, out: str | Path | None = None, sources=()):
    """Run the :func:`run_tasks` calls inside on ``backend`` (``None``: local processes).

    With ``dask``, connects to the scheduler, checks that every worker sees the output folder
    ``out`` (a marker file written here must be readable there) and each of the ``sources``
    folders, and disconnects at the end.

    Raises
    ------
    BlursynthError
        ``dask.distributed`` not installed, no scheduler at the address, no workers, or
        workers that do not see ``out``.
    """
    if backend is None or backend.name == "local":
        yield
        return
    try:
        from distributed import Client
        from joblib import parallel_config
    except ImportError:
        raise BlursynthError(
            "--backend dask needs dask.distributed: pip install 'blursynth[cluster]'"
        ) from None
    try:
        client = Client(backend.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=True)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:  # ValueError: not an address
        raise BlursynthError(
            f"cannot reach a dask scheduler at {backend.scheduler} ({exc})"
        ) from None
    global _on_cluster
    try:
        if not client.scheduler_info().get("workers"):
            raise BlursynthError(f"the dask scheduler at {backend.scheduler} has no workers")
        if out is not None:
            _check_shared_folder(client, Path(out))
        for folder in sources:
            _check_visible(client, Path(folder))
        _on_cluster = True
        with parallel_config(backend="dask"):
            yield
    finally:
        _on_cluster = False
        client.close()


def _check_shared_folder(client, out: Path) -> None:
    """Every worker must read a marker written in ``out`` by this process."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / f".cluster-check-{uuid.uuid4().hex}"
    marker.write_text("blursynth\n")
    try:
        seen = client.run(os.path.isfile, str(marker.resolve()))
    finally:
        marker.unlink(missing_ok=True)
    _refuse_blind(seen, out)


def _check_visible(client, folder: Path) -> None:
    """Every worker must see ``folder`` (the sources it reads) at the same path."""
    seen = client.run(os.path.isdir, str(folder.resolve()))
    _refuse_blind(seen, folder)


def _refuse_blind(seen: dict, folder: Path) -> None:
    blind = sorted(worker for worker, ok in seen.items() if not ok)
    if blind:
        raise BlursynthError(
            f"{len(blind)} dask worker(s) (first: {blind[0]}) do not see this folder: the "
            "cluster's workers must mount the source and output folders at the same paths",
            folder,
        )


def run_tasks(
    tasks: Iterable, *, jobs: int, ordered: bool = True, batch_size: int | str = "auto"
) -> Iterator:
    """Results of joblib ``delayed`` tasks, in task order (``ordered``) or as they finish.

    ``jobs`` worker processes on the local backend (1: in this process); on a cluster, all
    of its workers.
    """
    from joblib import Parallel

    return_as = "generator" if ordered else "generator_unordered"
    n_jobs = -1 if _on_cluster else jobs
    return Parallel(n_jobs=n_jobs, return_as=return_as, batch_size=batch_size)(tasks)
