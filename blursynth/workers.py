"""Worker processes that do not outlive the run that started them.

joblib's process workers notice a dead parent only after tens of seconds. A task calls
:func:`die_with_parent` first: in a worker process (not the main one, which runs the tasks
itself with ``--jobs 1``) it asks Linux to send the worker SIGTERM when its parent dies, so
``kill -9`` of the main process takes its workers with it. Elsewhere it does nothing.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys

_armed = False


def die_with_parent() -> None:
    """In a worker process on Linux, die (SIGTERM) when the parent process dies."""
    global _armed
    if _armed or not sys.platform.startswith("linux"):
        return
    _armed = True
    if multiprocessing.parent_process() is None:
        return  # the main process runs the tasks itself (one job)
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
