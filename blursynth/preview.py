"""Contact sheet of ``generate`` output: image | ground-truth overlay (| classes map, for
mixed images), one labelled row each."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.imageio import read_image_u8, read_mask_u8, write_png

#: Overlay colour of blurred pixels (RGB) and its opacity.
BLUR_COLOUR = np.array([255, 40, 40], dtype=np.float32)
ALPHA = 0.45
#: Colours of a classes map: sharp, motion, defocus, and anything else (black).
CLASS_COLOURS = np.array([[170, 170, 170], [230, 40, 40], [40, 90, 230], [0, 0, 0]], np.uint8)


LEGEND_HEIGHT = 20


def with_legend(picture: np.ndarray, entries) -> np.ndarray:
    """``picture`` (uint8 ``(H, W, 3)``) above a white band of colour swatches and their
    names: ``entries`` is a sequence of ``(name, (r, g, b))``. Text that does not fit the
    width is cut (the swatches come first)."""
    h, w = picture.shape[:2]
    band = np.full((LEGEND_HEIGHT, w, 3), 255, np.uint8)
    x = 4
    for name, colour in entries:
        if x + 12 > w:
            break
        band[4:16, x : x + 12] = np.asarray(colour, np.uint8)
        cv2.putText(
            band, name, (x + 16, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
        x += 16 + cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] + 12
    return np.concatenate([picture, band], axis=0)


def contact_sheet(
    folder, out_path, *, rows: int = 6, tile_height: int = 192, skipped: list | None = None
) -> Path:
    """Draw ``rows`` samples of a ``generate`` folder as ``image | overlay`` rows.

    Samples are spread evenly over the sorted names (so both models show up). Blurred pixels
    (gt 255) are tinted red, and the gt boundary is drawn in yellow.

    Parameters
    ----------
    folder : path
        Holds ``image/`` and ``gt/`` (the ``generate`` layout).
    out_path : path
        PNG to write.
    rows : int
    tile_height : int
        Height of each tile in pixels; widths keep the aspect ratio.
    skipped : list, optional
        Receives the :class:`BlursynthError` of each sample that could not be read (its row
        is left out; the sheet is drawn from the others).

    Returns
    -------
    Path
        ``out_path``.
    """
    if rows < 1:
        raise BlursynthError(f"rows must be >= 1, got {rows}")
    folder = Path(folder)
    gt_dir = folder / "gt"
    names = sorted(p.stem for p in (folder / "image").glob("*.png")) if gt_dir.is_dir() else []
    names = [s for s in names if (gt_dir / f"{s}.png").is_file()]
    if not names:
        raise BlursynthError(
            "no image/<name>.png with a gt/<name>.png here; is this a generate output?", folder
        )
    picks = [
        names[i]
        for i in np.unique(
            np.linspace(0, len(names) - 1, min(rows, len(names))).round().astype(int)
        )
    ]
    strips, skipped = [], [] if skipped is None else skipped
    for name in picks:  # an unreadable sample leaves its row out, not the sheet
        try:
            strips.append(_row(folder, name, tile_height))
        except BlursynthError as exc:
            skipped.append(exc)
    if not strips:
        raise BlursynthError(f"no sample could be read; first problem: {skipped[0]}", folder)
    width = max(s.shape[1] for s in strips)
    sheet = np.full((sum(s.shape[0] for s in strips), width, 3), 255, np.uint8)
    y = 0
    for strip in strips:
        sheet[y : y + strip.shape[0], : strip.shape[1]] = strip
        y += strip.shape[0]
    write_png(out_path, sheet)
    return Path(out_path)


def _row(folder: Path, name: str, tile_height: int) -> np.ndarray:
    image = read_image_u8(folder / "image" / f"{name}.png")
    blurred = read_mask_u8(folder / "gt" / f"{name}.png") >= 128
    if blurred.shape != image.shape[:2]:
        raise BlursynthError("gt size differs from its image", folder / "gt" / f"{name}.png")
    overlay = image.astype(np.float32)
    overlay[blurred] = (1 - ALPHA) * overlay[blurred] + ALPHA * BLUR_COLOUR
    overlay = overlay.round().astype(np.uint8)
    edge = blurred ^ cv2.erode(blurred.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    overlay[edge] = (255, 255, 0)
    panels = [image, overlay]
    text = f"{name}   image | blurred (red, gt=255)"
    classes_path = folder / "classes" / f"{name}.png"
    if classes_path.is_file():  # a mixed image: its sharp / motion / defocus map as well
        classes = read_mask_u8(classes_path)
        panels.append(CLASS_COLOURS[np.minimum(classes, 3)])
        text += " | classes (grey sharp, red motion, blue defocus)"
    scale = tile_height / image.shape[0]
    size = (max(1, round(image.shape[1] * scale)), tile_height)
    tiles = [cv2.resize(a, size, interpolation=cv2.INTER_NEAREST) for a in panels]
    tiles[0] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    tiles[1] = cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)
    label_h = 22
    strip = np.full((tile_height + label_h, len(tiles) * (size[0] + 4) - 4, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        strip[label_h:, k * (size[0] + 4) : k * (size[0] + 4) + size[0]] = tile
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return strip
