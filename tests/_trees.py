"""Trees of real files for tests: image/mask folders, PASCAL VOC trees, patch datasets.

Shared by the test modules (which import nothing from each other). Everything is written as
real PNG/JPEG/HDF5 files through the library's own writers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from blursynth.imageio import write_json
from blursynth.schema import MANIFEST, manifest_base
from blursynth.shards import ShardWriter, field_specs
from blursynth.sources.voc import voc_palette

# --- image/ + gt/ folders ---------------------------------------------------------------------


def blob_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A bool map with a blurred rectangle covering roughly a third to a half of the image."""
    mask = np.zeros((h, w), dtype=bool)
    y0, x0 = rng.integers(0, h // 3), rng.integers(0, w // 3)
    mask[y0 : y0 + h // 2 + rng.integers(0, h // 4), x0 : x0 + w // 2 + rng.integers(0, w // 4)] = 1
    return mask


def make_tree(
    root: Path,
    *,
    motion: int = 6,
    defocus: int = 6,
    size=(48, 56),
    seed: int = 0,
    prefix=("motion", "out_of_focus"),
    white_is_blurred: bool = True,
) -> Path:
    """Write ``root/image/*.png`` + ``root/gt/*.png`` in the CUHK layout; return ``root``."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    h, w = size
    for kind, n in ((prefix[0], motion), (prefix[1], defocus)):
        for k in range(1, n + 1):
            stem = f"{kind}{k:04d}"
            image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            mask = blob_mask(h, w, rng)
            if not white_is_blurred:
                mask = ~mask
            Image.fromarray(image).save(root / "image" / f"{stem}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "gt" / f"{stem}.png")
    return root


def check_rows(dataset_path: Path) -> dict:
    """Check every row of a dataset against its source; return the per-split image sets.

    Label == mask at the centre, category == the GT inside the window, patch == the crop of
    the reflect-padded source image, provenance consistent with the manifest.
    """
    from blursynth.imageio import to_u8
    from blursynth.schema import BLUR_TYPES, PatchParams, resolve_root
    from blursynth.shards import open_dataset
    from blursynth.sources import open_items

    with open_dataset(dataset_path) as ds:
        params = PatchParams(**ds.params)
        root = resolve_root(params.root, dataset_path)
        source, items = open_items(params.source, root, **params.source_options())
        images = ds.manifest.images
        p = params.patch_size
        r = p // 2
        seen = {}
        for split in ds.splits:
            rows = ds[split].read(0, len(ds[split]))
            seen[split] = set(np.unique(rows["image_index"]).tolist())
            for index in seen[split]:
                assert images[index].split == split
                image, blur = source.load(items[index])
                sel = rows["image_index"] == index
                cy, cx = rows["center_y"][sel], rows["center_x"][sel]
                assert (rows["label"][sel] == blur[cy, cx]).all()
                code = BLUR_TYPES.index(images[index].blur_type)
                assert (rows["blur_type"][sel] == code).all()
                pad_img = np.pad(to_u8(image), ((r, r), (r, r), (0, 0)), mode="reflect")
                pad_blur = np.pad(blur, r, mode="reflect")
                for y, x, patch, cat in zip(
                    cy, cx, rows["patches"][sel], rows["category"][sel], strict=True
                ):
                    crop = pad_img[y : y + p, x : x + p].transpose(2, 0, 1)
                    assert np.array_equal(patch, crop)
                    window = pad_blur[y : y + p, x : x + p]
                    assert cat == (0 if not window.any() else 1 if window.all() else 2)
        return seen


# --- PASCAL VOC trees -----------------------------------------------------------------------


def write_palette_png(path: Path, labels: np.ndarray) -> None:
    im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.astype(np.uint8).tobytes())
    im.putpalette(voc_palette())
    im.save(path)


def object_labels(h: int, w: int, cls: int, box: tuple[int, int, int, int], void: int = 2):
    """Background with one rectangle of ``cls`` and a void band of ``void`` px on each side
    of its border (as VOC draws it)."""
    labels = np.zeros((h, w), np.uint8)
    y0, x0, y1, x1 = box
    labels[max(0, y0 - void) : y1 + void, max(0, x0 - void) : x1 + void] = 255
    labels[y0 + void : y1 - void, x0 + void : x1 - void] = cls
    return labels


def textured_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random texture with plenty of high frequencies, uint8 RGB."""
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((4, 4, 1), np.uint8))[:h, :w]
    noise = rng.integers(-40, 41, (h, w, 3))
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def make_voc(
    root: Path,
    sizes=((48, 64), (64, 48), (56, 56), (60, 72)),
    seed: int = 0,
    splits=("train", "val", "trainval"),
) -> Path:
    """A VOCdevkit under ``root`` (root/VOCdevkit/VOC2012); returns the VOC2012 folder.

    Image ``img{i}`` has class ``i + 1`` on a rectangle covering about a quarter of it.
    """
    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for i, (h, w) in enumerate(sizes):
        image_id = f"img{i}"
        ids.append(image_id)
        Image.fromarray(textured_image(rng, h, w)).save(
            voc / "JPEGImages" / f"{image_id}.jpg", quality=95
        )
        box = (h // 4, w // 4, 3 * h // 4, 3 * w // 4)
        write_palette_png(
            voc / "SegmentationClass" / f"{image_id}.png", object_labels(h, w, i % 20 + 1, box)
        )
    for split in splits:
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return voc


# --- patch datasets --------------------------------------------------------------------------

P = 31


def synthetic_rows(n: int, seed: int) -> dict[str, np.ndarray]:
    """Sharp patches are white noise; blurred ones (label 1) Gaussian-blurred noise.

    Row ``i`` also carries ``i`` in ``image_index`` so tests can see which rows came back.
    """
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(n, 3, P, P)).astype(np.float32)
    label = (np.arange(n) % 2).astype(np.uint8)
    rng.shuffle(label)
    sigma = rng.uniform(1.0, 2.5, size=n)
    for i in np.flatnonzero(label):
        blurred = gaussian_filter(noise[i], (0, sigma[i], sigma[i]), mode="reflect")
        # stretch back to a similar range, so contrast alone does not give the label away
        blurred = (blurred - blurred.mean()) * (noise[i].std() / blurred.std()) + 127.5
        noise[i] = blurred
    patches = np.clip(np.rint(noise), 0, 255).astype(np.uint8)
    zeros = np.zeros(n, dtype=np.int32)
    return {
        "patches": patches,
        "label": label,
        "blur_type": np.zeros(n, np.uint8),
        "category": label.copy(),
        "image_index": np.arange(n, dtype=np.int32),
        "center_y": zeros,
        "center_x": zeros,
    }


def make_patch_dataset(
    root: Path, n_train: int = 256, n_val: int = 128, seed: int = 0, rows_per_shard: int = 100
) -> Path:
    """A real (HDF5) patch dataset written with the shard writer."""
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for k, (name, n) in enumerate((("train", n_train), ("val", n_val))):
        specs = field_specs(P, "hdf5")
        with ShardWriter(
            root, name, n, rows_per_shard, specs, "hdf5", {"plan_sha256": "test"}
        ) as w:
            w.write(synthetic_rows(n, seed + k))
        splits[name] = {"rows": n, "shards": [vars(r) for r in w.records]}
    write_json(
        root / MANIFEST,
        {
            **manifest_base(),
            "plan_sha256": "test",
            "splits": splits,
            "params": {"patch_size": P, "format": "hdf5", "seed": seed},
            "counts": [],
        },
    )
    return root


def make_objects(root: Path, fractions=(0.25, 0.3, 0.01, 0.95, 0.4), seed: int = 0) -> Path:
    """An object-mask folder (``image/*.jpg`` + ``mask/*.png``, 255 = object): image ``o{i}``
    has a centred rectangle covering about ``fractions[i]`` of its 48 x 64 pixels."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True)
    (root / "mask").mkdir()
    h, w = 48, 64
    for i, f in enumerate(fractions):
        Image.fromarray(textured_image(rng, h, w)).save(root / "image" / f"o{i}.jpg", quality=95)
        side = np.sqrt(f)
        bh, bw = max(1, round(h * side)), max(1, round(w * side))
        mask = np.zeros((h, w), np.uint8)
        y0, x0 = (h - bh) // 2, (w - bw) // 2
        mask[y0 : y0 + bh, x0 : x0 + bw] = 255
        Image.fromarray(mask).save(root / "mask" / f"o{i}.png")
    return root
