"""Reading and writing images and masks, with the dtype policy of :mod:`blursynth`.

Every writer is atomic: it writes ``<name>.tmp-<pid>`` beside the target and renames it, so
an interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from blursynth.errors import BlursynthError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _open(path: Path) -> Image.Image:
    im = None
    try:
        im = Image.open(path)
        im.load()  # force decoding now so truncated files fail here
    except FileNotFoundError:
        raise BlursynthError("file not found", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if im is not None:
            im.close()  # a failed load() leaves the file open
        raise BlursynthError(f"cannot read image ({exc})", path) from None
    return im


def images_by_stem(folder: Path) -> dict[str, Path]:
    """The images of a folder by file stem (sorted; the first extension wins a tie)."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            found.setdefault(path.stem, path)
    return found


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as float32 RGB ``(H, W, 3)`` in ``[0, 1]``."""
    return read_image_u8(path).astype(np.float32) / np.float32(255.0)


def read_image_u8(path: str | Path) -> np.ndarray:
    """Read an image as uint8 RGB ``(H, W, 3)``."""
    im = _open(Path(path))
    if im.mode != "RGB":  # convert() copies even an RGB image
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def read_mask_u8(path: str | Path) -> np.ndarray:
    """Read a single-channel mask as uint8 ``(H, W)``.

    Mode ``L``/``1``/``I`` masks are read as they are; ``RGB``/``RGBA`` masks take their first
    channel (CUHK ships a few RGBA masks whose colour channels are equal); palette masks are
    read as their palette *indices* (see :func:`read_palette_indices`).
    """
    path = Path(path)
    im = _open(path)
    if im.mode == "P":
        return np.asarray(im, dtype=np.uint8)
    if im.mode in ("RGB", "RGBA", "LA"):
        return np.asarray(im, dtype=np.uint8)[..., 0].copy()
    if im.mode == "1":
        return np.asarray(im, dtype=np.uint8) * np.uint8(255)
    if im.mode in ("I", "I;16", "F"):
        arr = np.asarray(im)
        return np.clip(arr, 0, 255).astype(np.uint8)
    return np.asarray(im.convert("L"), dtype=np.uint8)


def read_palette_indices(path: str | Path) -> np.ndarray:
    """Read a palette (mode ``P``) PNG as its uint8 indices ``(H, W)``.

    Converting a VOC mask to RGB or L destroys its labels: this reads the indices themselves.
    """
    path = Path(path)
    im = _open(path)
    if im.mode != "P":
        if im.mode == "L":  # some re-encoded VOC copies store indices as grey levels
            return np.asarray(im, dtype=np.uint8)
        raise BlursynthError(f"expected a palette (mode P) or L mask, got mode {im.mode}", path)
    return np.asarray(im, dtype=np.uint8)


def to_u8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 with rounding (values outside are clipped)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_writable(folder: str | Path) -> Path:
    """Check, before any long work, that files can be written in ``folder``.

    Folders it has to create for the check are removed again, so a run that fails later
    leaves nothing behind.

    Raises
    ------
    BlursynthError
        Naming the folder, when it cannot be created or written (read-only, full, a file).
    """
    from blursynth.errors import BlursynthError

    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise BlursynthError(f"cannot write here ({exc.strerror or exc})", folder) from None
    finally:
        for p in created:  # innermost first
            if p.is_dir():
                p.rmdir()
    return folder


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` array as a lossless PNG, atomically.

    The PNG is encoded with fixed settings and no timestamp, so the same array gives the
    same bytes.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_png expects uint8, got {array.dtype}")
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=6)


def write_text(path: str | Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    """Write JSON (sorted keys, 2-space indent, trailing newline) atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
