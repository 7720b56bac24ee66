"""Segment image files and write their maps: the I/O around :class:`Predictor`.

The maps come from :mod:`blursynth_train.predict` (any model family, test-time flips and
turns, large images in windows); this module finds the images, reads them, and writes:

Outputs per image ``STEM`` in the output folder, each written atomically:

``STEM_prob.png``
    16-bit grey PNG, ``round(p * 65535)`` with ``p`` the probability of "blurred" (any image
    viewer shows it; :func:`read_prob_png` reads it back to within 1/131070).
``STEM_mask.png``
    8-bit mask, 255 = blurred (``p >= threshold``), 0 = sharp: the CUHK convention.
``STEM_overlay.png``
    the image with blurred regions tinted red and outlined.
``STEM_classes.png`` (3-class models)
    for people: the image tinted green where sharp, red where motion-blurred, blue where
    defocused, with a legend band below (:data:`CLASS_LEGEND`).
``STEM_labels.png`` (3-class models)
    for programs: a palette PNG the image's size whose pixel values are 0 sharp, 1 motion,
    2 defocus (the palette shows them in the colours of ``STEM_classes.png``).
"""

from __future__ import annotations

import glob
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from torch import nn

from blursynth.errors import BlursynthError
from blursynth.imageio import IMAGE_EXTENSIONS, atomic_path, read_image_u8, write_png
from blursynth.postprocess import POSTPROCESS
from blursynth.postprocess import postprocess as apply_postprocess
from blursynth.preview import with_legend
from blursynth.progress import progressbar
from blursynth_train.predict import Prediction, Predictor

TINT = (255, 0, 0)


OUTPUT_SUFFIXES = ("_prob", "_mask", "_overlay", "_classes", "_labels")
"""What ``segment`` appends to an image's stem for its outputs (``STEM_mask.png`` ...)."""


def is_output(path: Path, out_dir: str | Path | None) -> bool:
    """Whether ``path`` is a file ``segment`` writes into ``out_dir``: never an input, so
    that segmenting a folder into itself does not segment its own masks on the next run."""
    return (
        out_dir is not None
        and path.suffix == ".png"
        and path.stem.endswith(OUTPUT_SUFFIXES)
        and path.parent.resolve() == Path(out_dir).resolve()
    )


def expand_inputs(specs: list[str], out_dir: str | Path | None = None) -> list[Path]:
    """Image files from files, folders (their images, not recursive) and glob patterns,
    less the outputs of ``segment`` in ``out_dir`` (:func:`is_output`).

    Raises
    ------
    BlursynthError
        For a spec that matches nothing, or two images with the same stem (their outputs
        would overwrite each other).
    """
    paths: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(
                q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS
            )
        elif p.is_file():
            found = [p]
        else:
            found = sorted(
                Path(q)
                for q in glob.glob(spec)
                if Path(q).is_file() and Path(q).suffix.lower() in IMAGE_EXTENSIONS
            )
        found = [q for q in found if not is_output(q, out_dir)]
        if not found:
            raise BlursynthError("no image found (not a file, a folder of images or a glob)", spec)
        paths.extend(found)
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen and seen[p.stem].resolve() != p.resolve():
            raise BlursynthError(f"two inputs share the stem {p.stem!r} ({seen[p.stem]})", p)
        seen[p.stem] = p
    return list(seen.values())


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 ``(H, W, 3)``: ``image`` tinted red where ``mask`` and outlined in red."""
    out = image.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.float32(TINT)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(min(mask.shape) / 300))
    cv2.drawContours(out, contours, -1, TINT, thickness)
    return out


def write_prob_png(path: str | Path, prob: np.ndarray) -> None:
    """Write a map in [0, 1] as a 16-bit grey PNG, atomically."""
    q = np.rint(np.clip(prob, 0, 1) * 65535).astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(q).save(tmp, format="PNG", compress_level=PNG_LEVEL)


def read_prob_png(path: str | Path) -> np.ndarray:
    """Read a map written by :func:`write_prob_png`: float32 ``(H, W)`` in [0, 1]."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.dtype == np.uint8:  # an 8-bit map still reads right
        return arr.astype(np.float32) / 255
    return arr.astype(np.float32) / 65535


CLASS_COLOURS = np.array([(60, 180, 75), (230, 25, 75), (0, 130, 200)], dtype=np.float32)
"""Colours of sharp, motion and defocus in ``STEM_classes.png``."""
CLASS_LEGEND = tuple(
    zip(("sharp", "motion", "defocus"), CLASS_COLOURS.astype(np.uint8), strict=True)
)
"""The legend under ``STEM_classes.png``."""


def write_labels_png(path: str | Path, labels: np.ndarray) -> None:
    """Write uint8 class labels (0 sharp, 1 motion, 2 defocus) as a palette PNG, atomically:
    the pixel values are the labels, the palette their colours in ``STEM_classes.png``."""
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette(CLASS_COLOURS.astype(np.uint8).ravel().tolist())
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", compress_level=PNG_LEVEL)


def class_map(image: np.ndarray, mask: np.ndarray, probs: np.ndarray, alpha: float = 0.5):
    """uint8 ``(H, W, 3)``: the image tinted by class: sharp where ``mask`` is off, else
    motion or defocus, whichever is more probable."""
    classes = np.where(mask, np.where(probs[1] >= probs[2], 1, 2), 0)
    out = (1 - alpha) * image.astype(np.float32) + alpha * CLASS_COLOURS[classes]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def segment_images(
    model: nn.Module,
    paths: list[Path],
    out_dir: str | Path,
    *,
    stride: int = 1,
    threshold: float = 0.5,
    postprocess: str = "none",
    tta: str = "none",
    batch: int = 8,
    quiet: bool = False,
) -> tuple[list[dict], list[dict]]:
    """Segment images and write their probability map, mask and overlay (see module doc).

    ``postprocess`` (one of :data:`blursynth.postprocess.POSTPROCESS`) is applied to the
    probability map before thresholding (:func:`blursynth.postprocess.postprocess`);
    ``tta`` (:data:`blursynth_train.choices.TTA`) averages the maps of flipped and turned
    copies first. A 3-class model also writes ``STEM_classes.png`` (:func:`class_map`) and
    ``STEM_labels.png`` (:func:`write_labels_png`). Images are read ``batch`` at a time,
    and a dense model segments those of one size together (:class:`Predictor`); reading
    the next batch and writing the last ones' outputs run in :data:`IO_THREADS` threads
    meanwhile. An image that cannot be read is skipped and listed; the others go on.

    Returns
    -------
    written : list of dict
        Per image: ``image``, ``prob``, ``mask``, ``overlay`` (and ``classes``) paths and
        ``blurred_fraction``.
    skipped : list of dict
        ``image`` and ``reason`` of every unreadable image.
    """
    _check_settings(threshold, postprocess, batch)
    predictor = Predictor(model, stride=stride, tta=tta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    batches = [paths[k : k + batch] for k in range(0, len(paths), batch)]
    written, skipped, writes = [], [], deque()
    # three overlapping stages: the next batch is read, and the last ones' PNGs encoded, by
    # I/O threads while the model runs (decoding, zlib and OpenCV release the GIL)
    with (
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="segment-io") as io,
        progressbar(length=len(paths), label="segment", quiet=quiet) as bar,
    ):
        reading = io.submit(_read_batch, batches[0]) if batches else None
        for k in range(len(batches)):
            loaded, bad = reading.result()
            skipped += bad
            if k + 1 < len(batches):
                reading = io.submit(_read_batch, batches[k + 1])
            preds = predictor([im for _, im in loaded])
            for (path, image), pred in zip(loaded, preds, strict=True):
                writes.append(
                    io.submit(_write_outputs, path, image, pred, out_dir, threshold, postprocess)
                )
            while len(writes) > 2 * batch:  # bounded memory: wait for the oldest writes
                written.append(writes.popleft().result())
            bar.update(len(batches[k]))
        written += [w.result() for w in writes]
    return written, skipped


def _check_settings(threshold: float, postprocess: str, batch: int) -> None:
    if not 0 <= threshold <= 1:
        raise BlursynthError(f"threshold must be in [0, 1], got {threshold}")
    if postprocess not in POSTPROCESS:
        raise BlursynthError(f"post-processing must be one of {POSTPROCESS}, got {postprocess!r}")
    if batch < 1:
        raise BlursynthError(f"batch must be >= 1, got {batch}")


IO_THREADS = 2
"""Threads that read images and write outputs beside the model in :func:`segment_images`."""
PNG_LEVEL = 1
"""zlib level of segment's PNGs: level 6 took about a third of the model's time per image."""


def _read_batch(paths: list[Path]) -> tuple[list, list[dict]]:
    """``(path, uint8 image)`` of the readable ``paths``, and the others with the reason."""
    loaded, skipped = [], []
    for path in paths:
        try:
            loaded.append((path, read_image_u8(path)))
        except BlursynthError as exc:
            skipped.append({"image": str(path), "reason": exc.reason})
    return loaded, skipped


def _write_outputs(path: Path, image, pred: Prediction, out_dir: Path, threshold, postprocess):
    prob, classes = pred.prob, pred.classes
    if postprocess != "none":
        prob = apply_postprocess(postprocess, image.astype(np.float32) / 255.0, prob)
    mask = prob >= threshold
    files = {k: out_dir / f"{path.stem}_{k}.png" for k in ("prob", "mask", "overlay")}
    write_prob_png(files["prob"], prob)
    write_png(files["mask"], mask.astype(np.uint8) * np.uint8(255), level=PNG_LEVEL)
    write_png(files["overlay"], overlay(image, mask), level=PNG_LEVEL)
    if classes is not None:
        files["classes"] = out_dir / f"{path.stem}_classes.png"
        picture = with_legend(class_map(image, mask, classes), CLASS_LEGEND)
        write_png(files["classes"], picture, level=PNG_LEVEL)
        files["labels"] = out_dir / f"{path.stem}_labels.png"
        write_labels_png(files["labels"], Prediction(prob, classes).labels(threshold))
    return {
        "image": str(path),
        **{k: str(v) for k, v in files.items()},
        "blurred_fraction": float(mask.mean()),
    }
