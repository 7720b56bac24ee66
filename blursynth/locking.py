"""One writer per output folder: an advisory lock that a killed run cannot leave behind.

``with folder_lock(out, "generate"):`` holds ``fcntl.flock`` on ``out/.blursynth.lock`` for
the duration of a run. A second run into the same folder is refused at once, with one line.
The kernel drops the lock when its process dies (``kill -9`` included), so a stale lock file
never blocks ``--resume``; the file is removed when the run ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blursynth.errors import BlursynthError

LOCK_NAME = ".blursynth.lock"


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold the folder's lock (creating the folder); refuse if another run holds it.

    Parameters
    ----------
    folder : path
    what : str
        The command, for the message (``"generate"``, ``"patches"``, ``"fit"`` ...).

    Raises
    ------
    BlursynthError
        When another process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # the holder before us may have removed the file after we opened it: then our lock
        # is on a deleted file and means nothing
        if not path.exists() or os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise BlockingIOError
    except BlockingIOError:
        os.close(fd)
        raise BlursynthError(
            f"another run is writing into this folder (its lock {LOCK_NAME} is held); wait "
            f"for it to finish or give this {what} run another folder",
            folder,
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
