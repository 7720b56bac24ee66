"""A contact sheet of a patch dataset: a few patches per category x label, enlarged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from blursynth.errors import BlursynthError
from blursynth.imageio import to_u8, write_png
from blursynth.preview import with_legend
from blursynth.schema import CATEGORIES
from blursynth.shards import open_dataset

_CELLS = ((0, 0), (1, 1), (2, 0), (2, 1))  # (category, label) rows of the sheet
_LABEL_WIDTH = 120


def patch_grid(
    dataset_dir,
    out_path,
    *,
    per_cell: int = 8,
    seed: int = 0,
    split: str | None = None,
    scale: int = 3,
) -> Path:
    """Draw ``per_cell`` random patches for each category x label, one row each.

    Parameters
    ----------
    dataset_dir : path
        A patch dataset (see :mod:`blursynth.shards`).
    out_path : path
        PNG to write.
    per_cell : int
        Patches per row.
    seed : int
        Which patches are drawn.
    split : str, optional
        Split to draw from (default: the first, usually ``train``).
    scale : int
        Nearest-neighbour enlargement of each patch.

    Returns
    -------
    Path
        ``out_path``.
    """
    if per_cell < 1:
        raise BlursynthError(f"per_cell must be >= 1, got {per_cell}")
    rng = np.random.default_rng(seed)
    with open_dataset(dataset_dir) as ds:
        reader = ds[split or ds.splits[0]]
        p = ds.params["patch_size"]
        meta = reader.read(0, len(reader), fields=("label", "category"))
        tile = p * scale + 4
        sheet = Image.new(
            "RGB", (_LABEL_WIDTH + per_cell * tile, len(_CELLS) * tile), (255, 255, 255)
        )
        draw = ImageDraw.Draw(sheet)
        for r, (cat, label) in enumerate(_CELLS):
            rows = np.flatnonzero((meta["category"] == cat) & (meta["label"] == label))
            text = f"{CATEGORIES[cat]}\nlabel {label}\n({rows.size:,})"
            draw.multiline_text((4, r * tile + 4), text, fill=(0, 0, 0))
            if rows.size == 0:
                continue
            picks = np.sort(rng.choice(rows, size=min(per_cell, rows.size), replace=False))
            for c, row in enumerate(picks):
                _paste_patch(sheet, draw, reader, int(row), p, scale, (c, r), label)
    out_path = Path(out_path)
    write_png(out_path, np.asarray(sheet))
    return out_path


def _paste_patch(sheet, draw, reader, row: int, p: int, scale: int, cell, label: int) -> None:
    """One patch, enlarged, in a frame coloured by its label (red: blurred centre, green:
    sharp centre), at grid ``cell`` = (column, row)."""
    patch = reader.read(row, row + 1, fields=("patches",))["patches"][0]
    hwc = np.transpose(patch, (1, 2, 0))
    if hwc.dtype != np.uint8:  # caffe format: float32 in [0, 1]
        hwc = to_u8(hwc)
    big = Image.fromarray(hwc).resize((p * scale, p * scale), Image.NEAREST)
    tile = p * scale + 4
    x, y = _LABEL_WIDTH + cell[0] * tile, cell[1] * tile
    draw.rectangle(
        (x, y, x + tile - 1, y + tile - 1), fill=(200, 40, 40) if label else (40, 160, 40)
    )
    sheet.paste(big, (x + 2, y + 2))


TILE_COLOURS = np.array([(60, 180, 75), (230, 25, 75), (0, 130, 200)], dtype=np.float32)
"""Overlay colours of label 0 (sharp), 1 (blurred or motion) and 2 (defocus)."""


def tile_grid(
    dataset_dir,
    out_path,
    *,
    count: int = 12,
    seed: int = 0,
    cols: int = 4,
    split: str | None = None,
    alpha: float = 0.4,
) -> Path:
    """A sheet of random tiles of a tile dataset, each beside its label overlay.

    Label colours: green sharp, red blurred (3 classes: red motion, blue defocus); padding
    (255) is drawn grey; a legend under the sheet says so.
    """
    if count < 1 or cols < 1:
        raise BlursynthError(f"count and cols must be >= 1, got {count}, {cols}")
    rng = np.random.default_rng(seed)
    with open_dataset(dataset_dir) as ds:
        reader = ds[split or ds.splits[0]]
        if len(reader) == 0:
            raise BlursynthError(f"split {reader.name} holds no tile", dataset_dir)
        picks = np.sort(rng.choice(len(reader), size=min(count, len(reader)), replace=False))
        s = ds.manifest.row_size
        rows = -(-len(picks) // cols)
        sheet = Image.new("RGB", (cols * (2 * s + 12), rows * (s + 6)), (255, 255, 255))
        for k, row in enumerate(picks):
            data = reader.read(int(row), int(row) + 1, fields=("image", "label"))
            image = np.transpose(data["image"][0], (1, 2, 0)).astype(np.float32)
            label = data["label"][0]
            colours = np.where(label[..., None] == 255, 128.0, TILE_COLOURS[np.minimum(label, 2)])
            tinted = (1 - alpha) * image + alpha * colours
            pair = np.concatenate([image, np.full((s, 4, 3), 255.0), tinted], axis=1)
            y, x = divmod(k, cols)
            sheet.paste(Image.fromarray(to_u8(pair / 255.0)), (x * (2 * s + 12), y * (s + 6)))
        classes = int(ds.params.get("classes", 2))
    names = ("sharp", "blurred") if classes == 2 else ("sharp", "motion", "defocus")
    colours = TILE_COLOURS.astype(np.uint8)[: len(names)]
    entries = [*zip(names, colours, strict=True), ("no label", (128, 128, 128))]
    write_png(out_path, with_legend(np.asarray(sheet), entries))
    return Path(out_path)
