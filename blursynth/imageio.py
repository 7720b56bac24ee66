"""Reading and writing images and masks, with the dtype policy of :mod:`blursynth`.

Every writer is atomic: it writes ``<name>.tmp-<pid>`` beside the target and renames it, so
an interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from contextlib import contextmanager
from errno import ENOSPC
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from blursynth.errors import BlursynthError, os_reason

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MAX_PIXELS_ENV = "BLURSYNTH_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels are refused (and skipped where a command reads many): a 686 KB
PNG can declare 15000 x 15000 pixels, 900 MB decoded. Raise the limit with the environment
variable ``BLURSYNTH_MAX_PIXELS``."""


def max_pixels() -> int:
    """The pixel limit in force (:data:`DEFAULT_MAX_PIXELS` or ``$BLURSYNTH_MAX_PIXELS``)."""
    value = os.environ.get(MAX_PIXELS_ENV, "")
    try:
        limit = int(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        raise BlursynthError(f"{MAX_PIXELS_ENV} must be a whole number, got {value!r}") from None
    if limit < 1:
        raise BlursynthError(f"{MAX_PIXELS_ENV} must be >= 1, got {limit}")
    return limit


_PILLOW_LIMIT_LOCK = threading.Lock()


def _open_header(path: Path) -> Image.Image:
    """``Image.open`` (the header only) without Pillow's decompression-bomb check, which our
    own limit replaces. Pillow's limit is a module global: it is lifted and restored under a
    lock, so that reader threads (``segment``'s) never leave it lifted for good."""
    with _PILLOW_LIMIT_LOCK:
        pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit


def _open(path: Path) -> Image.Image:
    """Open and decode an image, turned upright as its EXIF orientation says.

    Our pixel limit (:func:`max_pixels`) replaces Pillow's decompression-bomb check, and is
    applied before anything is decoded.
    """
    im = None
    limit = max_pixels()
    try:
        im = _open_header(path)
        if im.width * im.height > limit:
            raise BlursynthError(
                f"{im.width} x {im.height} pixels, over the limit of {limit:,} (a decompression "
                f"bomb, or a very large image: raise {MAX_PIXELS_ENV} to read it)",
                path,
            )
        im.load()  # force decoding now so truncated files fail here
        if _orientation(im) not in (None, 1):
            ImageOps.exif_transpose(im, in_place=True)
    except FileNotFoundError:
        raise BlursynthError("file not found", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, BlursynthError) as exc:
        if im is not None:
            im.close()  # a failed load() leaves the file open
        if isinstance(exc, BlursynthError):
            raise
        raise BlursynthError(f"cannot read image ({exc})", path) from None
    return im


EXIF_IN_HEADER = ("JPEG", "MPO", "TIFF", "WEBP")
"""Formats whose EXIF orientation is honoured: those that hold it before the pixels (a
PNG's may follow them, and reading it would decode the image)."""


def _orientation(im: Image.Image) -> int | None:
    return im.getexif().get(0x0112) if im.format in EXIF_IN_HEADER else None


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image as :func:`read_image_u8` returns it (upright), from
    its header alone; refuses what :func:`_open` refuses for its size.

    Raises
    ------
    BlursynthError
        ``file not found``, an unreadable header, or more pixels than :func:`max_pixels`.
    """
    path = Path(path)
    limit = max_pixels()
    try:
        with _open_header(path) as im:
            width, height = im.size
            turned = _orientation(im) in (5, 6, 7, 8)  # a quarter turn: swap
    except FileNotFoundError:
        raise BlursynthError("file not found", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BlursynthError(f"cannot read image ({exc})", path) from None
    if width * height > limit:
        raise BlursynthError(
            f"{width} x {height} pixels, over the limit of {limit:,} (a decompression bomb, or "
            f"a very large image: raise {MAX_PIXELS_ENV} to read it)",
            path,
        )
    return (height, width) if turned else (width, height)


def _scaled_u8(im: Image.Image) -> np.ndarray | None:
    """uint8 ``(H, W)`` of a 16-bit or float single-channel image, scaled by its type's
    range (16 bits: / 257; float: [0, 1] to [0, 255]); None for other modes. Pillow reads
    16-bit PNGs and TIFFs as ``I;16``, float TIFFs as ``F``."""
    if im.mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.float64) / 257.0
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64) * 255.0
    else:
        return None
    return np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)


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
    """Read an image as uint8 RGB ``(H, W, 3)``: upright (EXIF orientation applied), grey
    repeated, 16-bit and float images scaled by their type's range (not clipped)."""
    im = _open(Path(path))
    grey = _scaled_u8(im)
    if grey is not None:
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode != "RGB":  # convert() copies even an RGB image
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def read_mask_u8(path: str | Path) -> np.ndarray:
    """Read a single-channel mask as uint8 ``(H, W)``.

    Mode ``L``/``1``/``I`` masks are read as they are (``I`` clipped to 255), 16-bit and
    float masks scaled like images (:func:`read_image_u8`); ``RGB``/``RGBA`` masks take their
    first channel (CUHK ships a few RGBA masks whose colour channels are equal); palette
    masks are read as their palette *indices* (see :func:`read_palette_indices`). A mask
    turns upright with its EXIF orientation, as its image does.
    """
    path = Path(path)
    im = _open(path)
    if im.mode == "P":
        return np.asarray(im, dtype=np.uint8)
    if im.mode in ("RGB", "RGBA", "LA"):
        return np.asarray(im, dtype=np.uint8)[..., 0].copy()
    if im.mode == "1":
        return np.asarray(im, dtype=np.uint8) * np.uint8(255)
    scaled = _scaled_u8(im)
    if scaled is not None:
        return scaled
    if im.mode == "I":
        return np.clip(np.asarray(im), 0, 255).astype(np.uint8)
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
    except OSError as exc:  # a write into an open file names no file: name the target
        if exc.filename is None or exc.errno == ENOSPC:
            raise BlursynthError(f"cannot write ({os_reason(exc)})", target) from None
        raise
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
    from blursynth.errors import BlursynthError, os_reason

    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        if probe.is_file():  # a half-written probe would keep its folder
            probe.unlink()
        raise BlursynthError(f"cannot write here ({os_reason(exc)})", folder) from None
    finally:
        for p in created:  # innermost first
            if p.is_dir():
                p.rmdir()
    return folder


PNG_STRATEGIES = {
    "default": zlib.Z_DEFAULT_STRATEGY,
    "filtered": zlib.Z_FILTERED,
    "huffman": zlib.Z_HUFFMAN_ONLY,
    "rle": zlib.Z_RLE,
    "fixed": zlib.Z_FIXED,
}
"""zlib's compression strategies by name (``write_png``'s ``strategy``). ``rle`` matches
runs only: for filtered photographs at level 1 it is faster than ``default`` and about as
small as level 6 (docs/benchmarks.md, "PNG encoding")."""

PNG_FILTERS = ("adaptive", "auto", "none", "sub", "up", "avg", "paeth")
"""PNG row filters (``write_png``'s ``filter``). ``adaptive``: Pillow's encoder, which tries
the five filters on every row and keeps the smallest (what every PNG of this package was
before ``--png-filter``); the others: libpng through OpenCV, one filter for every row,
``auto`` being Paeth for colour and Up for grey (for rendered images at level 1 with
``rle``, ~40 % faster than ``adaptive`` and as small)."""


def write_png(
    path: str | Path,
    array: np.ndarray,
    level: int = 6,
    strategy: str = "default",
    filter: str = "adaptive",  # noqa: A002 (the PNG term)
) -> None:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` RGB array as a lossless PNG, atomically.

    The PNG is encoded with fixed settings (zlib ``level`` 0-9 and ``strategy``, a key of
    :data:`PNG_STRATEGIES`; the row ``filter``, one of :data:`PNG_FILTERS`: the same pixels
    with any of them, only the size and the time change) and no timestamp, so the same array
    gives the same bytes.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_png expects uint8, got {array.dtype}")
    if filter not in PNG_FILTERS:
        raise ValueError(f"filter must be one of {PNG_FILTERS}, got {filter!r}")
    compress_type = PNG_STRATEGIES[strategy]
    with atomic_path(path) as tmp:
        if filter == "adaptive":
            Image.fromarray(array).save(
                tmp, format="PNG", compress_level=level, compress_type=compress_type
            )
        else:
            tmp.write_bytes(_libpng_encode(array, level, compress_type, filter))


def _libpng_encode(array: np.ndarray, level: int, compress_type: int, filter: str) -> bytes:  # noqa: A002
    """PNG bytes from OpenCV's libpng encoder, with one row filter for every row."""
    import cv2

    if filter == "auto":
        filter = "paeth" if array.ndim == 3 else "up"  # noqa: A001
    flag = getattr(cv2, f"IMWRITE_PNG_FILTER_{filter.upper()}")
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR as RGB
    params = [
        cv2.IMWRITE_PNG_COMPRESSION, level,
        cv2.IMWRITE_PNG_STRATEGY, compress_type,
        cv2.IMWRITE_PNG_FILTER, flag,
    ]  # fmt: skip
    ok, buf = cv2.imencode(".png", array, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {array.shape} array as PNG")
    return buf.tobytes()


def write_text(path: str | Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    """Write JSON (sorted keys, 2-space indent, trailing newline) atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
