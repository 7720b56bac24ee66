"""Build the embedded VOC-layout sample that ``blursynth generate`` uses when no ``--voc`` is given.

Run once by hand from the repository root::

    python datasets/make_embedded_sample.py

It reads photographs that ship inside the scikit-image wheel (``skimage.data``, no network
needed), keeps only those whose docstrings state CC0 or public domain, resizes them to about
PASCAL VOC size (long side <= 500 px), segments one object per image with OpenCV GrabCut seeded
by a hand-chosen rectangle, adds a VOC-style 255 "void" band along object borders and writes

    datasets/embedded/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    datasets/embedded/VOCdevkit/VOC2012/SegmentationClass/<id>.png   (palette PNG, VOC colours)
    datasets/embedded/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt

The output is deterministic (OpenCV RNG seeded, one thread). See ``datasets/embedded/README.md``
for the dataset card. ``--sheet PATH`` also writes a contact sheet (image | mask overlay).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from blursynth.sources.voc import voc_palette

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOID = 255
VOID_BAND_PX = 5  # total width of the 255 band straddling each object border
GRABCUT_ITERS = 8
JPEG_QUALITY = 90
LONG_SIDE = 500

ROOT = Path(__file__).resolve().parent / "embedded" / "VOCdevkit" / "VOC2012"


@dataclass(frozen=True)
class Spec:
    """One sample image. Coordinates are in the *output* (resized) image, as (x, y, w, h)."""

    id: str
    source: str  # function name in skimage.data
    licence: str
    cls: str  # VOC class of the object, or "background" for a background-only image
    crop: tuple[int, int, int, int] | None = None  # (x, y, w, h) in the ORIGINAL image
    rect: tuple[int, int, int, int] | None = None  # GrabCut rectangle
    fg: tuple[tuple[int, int, int, int], ...] = field(default=())  # extra sure-foreground boxes
    bg: tuple[tuple[int, int, int, int], ...] = field(default=())  # extra sure-background boxes
    split: str = "train"


SPECS: tuple[Spec, ...] = (
    Spec(
        id="skimage_astronaut",
        source="astronaut",
        licence="Public domain (NASA)",
        cls="person",
        rect=(12, 8, 345, 492),
        fg=((150, 178, 125, 80), (272, 332, 50, 36)),  # neck/collar ring, name tag
        bg=((0, 0, 8, 500), (380, 30, 120, 230)),
    ),
    Spec(
        id="skimage_chelsea",
        source="chelsea",
        licence="CC0 (Stefan van der Walt)",
        cls="cat",
        rect=(0, 0, 415, 300),
    ),
    Spec(
        id="skimage_camera",
        source="camera",
        licence="CC0 (Lav Varshney)",
        cls="person",
        rect=(0, 58, 340, 442),
        bg=((228, 340, 80, 160), (280, 238, 26, 100)),  # tripod (VOC: background)
        split="val",
    ),
    Spec(
        id="skimage_rocket",
        source="rocket",
        licence="Public domain (SpaceX)",
        cls="aeroplane",  # nearest VOC class; strict VOC labelling would leave it background
        crop=(120, 115, 400, 300),
        rect=(174, 2, 60, 298),
        fg=((196, 20, 12, 30),),  # nose cone
    ),
    Spec(
        id="skimage_coffee",
        source="coffee",
        licence="CC0 (Rachel Michetti)",
        cls="background",  # a cup is no VOC class: VOC labels it background
        split="val",
    ),
    Spec(
        id="skimage_hubble_deep_field",
        source="hubble_deep_field",
        licence="Public domain (NASA)",
        cls="background",
        crop=(0, 60, 1000, 750),
    ),
)


def load_image(spec: Spec) -> np.ndarray:
    """The skimage.data image as RGB uint8, cropped and resized to long side <= LONG_SIDE."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, spec.source)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)
    if spec.crop is not None:
        x, y, w, h = spec.crop
        img = img[y : y + h, x : x + w]
    h, w = img.shape[:2]
    scale = LONG_SIDE / max(h, w)
    if scale < 1:
        size = (round(w * scale), round(h * scale))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def grabcut_object(img: np.ndarray, spec: Spec) -> np.ndarray:
    """Boolean object mask from GrabCut seeded by spec.rect (plus optional sure boxes)."""
    assert spec.rect is not None
    cv2.setRNGSeed(0)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    mask = np.zeros(img.shape[:2], np.uint8)
    x, y, w, h = spec.rect
    mask[:] = cv2.GC_BGD
    mask[y : y + h, x : x + w] = cv2.GC_PR_FGD
    for bx, by, bw, bh in spec.bg:
        mask[by : by + bh, bx : bx + bw] = cv2.GC_BGD
    for fx, fy, fw, fh in spec.fg:
        mask[fy : fy + fh, fx : fx + fw] = cv2.GC_FGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, mask, None, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_MASK)
    obj = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return clean(obj)


def clean(obj: np.ndarray) -> np.ndarray:
    """Open away specks, keep components >= 10% of the largest, fill holes."""
    u8 = obj.astype(np.uint8)
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    u8 = cv2.morphologyEx(u8, cv2.MORPH_OPEN, k3)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(u8, connectivity=8)
    if n <= 1:
        return np.zeros_like(obj)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.1 * areas.max()) + 1
    u8 = np.isin(lab, keep).astype(np.uint8)
    # fill holes: background reachable from the border stays background
    inv = 1 - u8
    n, lab, _, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    holes = (inv == 1) & ~np.isin(lab, border)
    return (u8 == 1) | holes


def label_mask(obj: np.ndarray, cls_index: int) -> np.ndarray:
    """uint8 VOC label: cls_index on the object, 0 elsewhere, 255 in a band along its border."""
    label = np.where(obj, cls_index, 0).astype(np.uint8)
    if cls_index and obj.any():
        u8 = obj.astype(np.uint8)
        r = VOID_BAND_PX // 2
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        band = (cv2.dilate(u8, k) - cv2.erode(u8, k)).astype(bool)
        label[band] = VOID
    return label


def build(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    img = load_image(spec)
    cls_index = VOC_CLASSES.index(spec.cls)
    if cls_index == 0:
        obj = np.zeros(img.shape[:2], bool)
    else:
        obj = grabcut_object(img, spec)
    return img, label_mask(obj, cls_index)


def save(img: np.ndarray, label: np.ndarray, ident: str, root: Path) -> None:
    Image.fromarray(img).save(
        root / "JPEGImages" / f"{ident}.jpg", quality=JPEG_QUALITY, optimize=True
    )
    pim = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())
    pim.putpalette(voc_palette())
    pim.save(root / "SegmentationClass" / f"{ident}.png", optimize=True)


def contact_sheet(rows: list[tuple[str, np.ndarray, np.ndarray]], path: Path) -> None:
    tiles = []
    for _, img, label in rows:
        over = (img * 0.5).astype(np.uint8)  # background darkened
        obj = (label > 0) & (label < VOID)
        over[obj] = (0.5 * img[obj] + [127, 0, 0]).astype(np.uint8)  # object tinted red
        over[label == VOID] = (255, 255, 0)  # void band yellow
        pair = np.concatenate([img, over], axis=1)
        canvas = np.full((LONG_SIDE, 2 * LONG_SIDE, 3), 255, np.uint8)
        canvas[: pair.shape[0], : pair.shape[1]] = pair
        tiles.append(canvas)
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT, help="VOC2012 folder to (re)write")
    ap.add_argument("--sheet", type=Path, default=None, help="also write a contact sheet PNG")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    root: Path = args.out
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)
        (root / sub).mkdir(parents=True)

    rows = []
    for spec in SPECS:
        img, label = build(spec)
        save(img, label, spec.id, root)
        frac = float(np.mean((label > 0) & (label < VOID)))
        print(f"{spec.id:28s} {img.shape[1]}x{img.shape[0]} {spec.cls:11s} object {frac:.1%}")
        rows.append((spec.id, img, label))

    sets = root / "ImageSets" / "Segmentation"
    ids = [s.id for s in SPECS]
    (sets / "train.txt").write_text("".join(f"{s.id}\n" for s in SPECS if s.split == "train"))
    (sets / "val.txt").write_text("".join(f"{s.id}\n" for s in SPECS if s.split == "val"))
    (sets / "trainval.txt").write_text("".join(f"{i}\n" for i in ids))
    if args.sheet is not None:
        contact_sheet(rows, args.sheet)


if __name__ == "__main__":
    main()
