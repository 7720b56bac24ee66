"""Domain errors: one exception type the CLI turns into a one-line message."""

from __future__ import annotations

import errno
from pathlib import Path


class BlursynthError(Exception):
    """A problem with the user's input, reported without a traceback.

    Parameters
    ----------
    message : str
        What is wrong and, where possible, how to fix it.
    path : str or Path, optional
        The file or folder the problem is in; it is put at the front of the message.
    """

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


def os_reason(exc: OSError) -> str:
    """Why an OSError happened, in words a user acts on (a full disk says so)."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full: No space left on device"
    return exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
