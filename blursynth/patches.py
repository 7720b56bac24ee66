"""Balanced patch sampling: scan images, plan splits and quotas, draw patches, write shards.

The recipe (Section 4 of the report), exact and reproducible:

* **Label** is the ground truth at the centre pixel (1 = blurred). Patches are ``P x P``
  RGB (``P`` odd, 31 by default).
* **Category** is the ground truth inside the window: ``sharp`` (all sharp), ``blurred``
  (all blurred) or ``mixed``. Every pixel can be a centre: the image and its blur map are
  **reflect-padded** by ``P // 2`` (``numpy.pad(mode="reflect")`` = OpenCV
  ``BORDER_REFLECT_101``), so border pixels are sampled as often as others.
* Each image offers four *cells*: sharp/0, blurred/1, mixed/0, mixed/1. A split's patch
  budget is shared equally between blur types, then equally between labels, each label's
  half taken 2/3 from its pure category and 1/3 from mixed windows (so the three categories
  come out in thirds and labels 50/50), then equally between the images that offer the
  cell. Shares are capped by what a cell offers (no centre is drawn twice in an image) and
  a short cell's deficit goes to its siblings ("water-filling": first the other cell of
  the same label), so totals are met whenever the images allow; the achieved counts are
  reported per split x blur type x category x label.
* Images without sharp (or without blurred) pixels still give the cells they have.
* **Splits**: ``eval_images`` whole images (half motion, half defocus) are held out for
  dense evaluation; the rest of each blur type is split 4:1 into train and val by image.
* **Randomness**: split assignment, quotas and shuffles come from
  ``SeedSequence(seed, spawn_key=(1000 + purpose, ...))``; image ``i`` of split ``s`` draws
  from ``SeedSequence(seed, spawn_key=(s, i))`` -- results do not depend on ``--jobs``.
* **Writing** is two passes, memory bounded by one shard: rows get their final shuffled
  position from a plan; each image's patches are appended to the bucket file of the shard
  they land in; then each bucket is put in order and written as one HDF5 shard.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from blursynth import __version__
from blursynth.errors import BlursynthError
from blursynth.imageio import to_u8, write_json, write_text
from blursynth.progress import progressbar
from blursynth.shards import (
    BLUR_TYPES,
    CAFFE_MAX_SHARD_BYTES,
    CARD,
    CATEGORIES,
    CHECKSUMS,
    EVAL_LIST,
    MANIFEST,
    ShardRecord,
    ShardWriter,
    field_specs,
    manifest_base,
    sha256_file,
    shard_attrs,
    shard_name,
)

SPLITS = ("train", "val")
SPLIT_IDS = {"train": 0, "val": 1}
# The four cells an image offers: (category code, label).
CELLS = ((0, 0), (1, 1), (2, 0), (2, 1))
# Purposes of the non-image random streams (image streams use spawn_key=(split_id, index)).
_SPLIT_STREAM, _SHUFFLE_STREAM, _ORDER_STREAM = 1000, 1001, 1002


@dataclass(frozen=True)
class PatchParams:
    """Every parameter of a patch dataset (stored in the manifest and every shard).

    Parameters
    ----------
    source : {"shi", "synth", "folder"}
    root : str
        Absolute path of the source folder.
    polarity, threshold : folder-source mask options (``None`` for shi/synth defaults).
    blur_type : str or None
        Blur type given to every item of a ``folder`` source (otherwise ``"unknown"``).
    patch_size : int
        Odd, >= 3.
    seed : int
    train_patches, val_patches : int or None
        Split sizes (``val_patches`` defaults to ``train_patches // 4``); or
    per_image : int or None
        Patches from every train/val image instead.
    eval_images : int
        Whole images held out (half motion, half defocus).
    only : str or None
        Keep only ``"motion"`` or ``"defocus"`` images in train and val. The images are
        assigned to eval/train/val exactly as without it, so datasets built with and without
        ``only`` share their held-out images (the report's Table 1).
    rows_per_shard : int
    format : {"hdf5", "caffe"}
    """

    source: str
    root: str
    polarity: str | None = None
    threshold: int | None = None
    blur_type: str | None = None
    patch_size: int = 31
    seed: int = 0
    train_patches: int | None = 1_000_000
    val_patches: int | None = None
    per_image: int | None = None
    eval_images: int = 20
    only: str | None = None
    rows_per_shard: int = 100_000
    format: str = "hdf5"

    def __post_init__(self):
        if self.patch_size < 3 or self.patch_size % 2 == 0:
            raise BlursynthError(f"patch size must be odd and >= 3, got {self.patch_size}")
        if self.per_image is not None:
            if self.per_image < 1:
                raise BlursynthError(f"--per-image must be >= 1, got {self.per_image}")
            object.__setattr__(self, "train_patches", None)
            object.__setattr__(self, "val_patches", None)
        else:
            if self.train_patches is None or self.train_patches < 0:
                raise BlursynthError(f"train patches must be >= 0, got {self.train_patches}")
            if self.val_patches is None:
                object.__setattr__(self, "val_patches", self.train_patches // 4)
            elif self.val_patches < 0:
                raise BlursynthError(f"val patches must be >= 0, got {self.val_patches}")
        if self.eval_images < 0:
            raise BlursynthError(f"--eval-images must be >= 0, got {self.eval_images}")
        if self.seed < 0:  # SeedSequence takes no negative entropy
            raise BlursynthError(f"--seed must be >= 0, got {self.seed}")
        if self.rows_per_shard < 1:
            raise BlursynthError(f"rows per shard must be >= 1, got {self.rows_per_shard}")
        for name in ("blur_type", "only"):
            value = getattr(self, name)
            if value is not None and value not in ("motion", "defocus"):
                raise BlursynthError(f"{name} must be motion or defocus, got {value!r}")
        if self.format == "caffe":
            row_bytes = 4 * 3 * self.patch_size**2
            if self.rows_per_shard * row_bytes > CAFFE_MAX_SHARD_BYTES:
                raise BlursynthError(
                    f"--rows-per-shard {self.rows_per_shard} makes caffe shards over "
                    f"{CAFFE_MAX_SHARD_BYTES / 1e9:.1f} GB (Caffe's HDF5 layer fails at 2 GB);"
                    f" use at most {CAFFE_MAX_SHARD_BYTES // row_bytes}"
                )
        field_specs(self.patch_size, self.format)  # validates format

    def source_options(self) -> dict:
        """Keyword options for :func:`blursynth.sources.open_source` (and ``blur_type``)."""
        opts = {"polarity": self.polarity, "threshold": self.threshold, "blur_type": self.blur_type}
        return {k: v for k, v in opts.items() if v is not None}

    def to_dict(self) -> dict:
        return asdict(self)

    def command(self, out: str = "DIR") -> str:
        """The ``blursynth patches`` command line that builds this dataset."""
        parts = [
            "blursynth patches",
            f"--source {self.source}",
            f"--root {self.root}",
            f"--out {out}",
        ]
        for name in ("polarity", "threshold", "blur_type"):
            if getattr(self, name) is not None:
                parts.append(f"--{name.replace('_', '-')} {getattr(self, name)}")
        if self.per_image is not None:
            parts.append(f"--per-image {self.per_image}")
        else:
            parts += [f"--train-patches {self.train_patches}", f"--val-patches {self.val_patches}"]
        if self.only is not None:
            parts.append(f"--only {self.only}")
        parts += [
            f"--eval-images {self.eval_images}",
            f"--patch-size {self.patch_size}",
            f"--seed {self.seed}",
            f"--rows-per-shard {self.rows_per_shard}",
            f"--format {self.format}",
        ]
        return " ".join(parts)


def open_items(params: PatchParams):
    """Open the source; return ``(source, items)`` with ``blur_type`` applied to the items."""
    from blursynth.sources import SOURCES, open_source

    if params.source not in SOURCES:
        raise BlursynthError(
            f"unknown source {params.source!r}; choose one of {', '.join(SOURCES)}"
        )
    options = params.source_options()
    blur_type = options.pop("blur_type", None)
    if params.source != "folder" and (options or blur_type):
        raise BlursynthError("--polarity/--threshold/--blur-type apply to --source folder only")
    source = open_source(params.source, params.root, **options)
    items = list(source.items)
    if blur_type:
        items = [replace(it, blur_type=blur_type) for it in items]
    return source, items


# --- per-image maths (pure) -----------------------------------------------------------------


def cell_map(blur: np.ndarray, patch_size: int) -> np.ndarray:
    """Cell code of every pixel as a centre: 0 sharp, 1 blurred, 2 mixed/0, 3 mixed/1.

    Parameters
    ----------
    blur : bool (H, W)
        True where blurred; ``H, W >= patch_size``.
    patch_size : int
        Odd window size; the map is reflect-padded (``BORDER_REFLECT_101``).

    Returns
    -------
    uint8 (H, W)
    """
    full = patch_size * patch_size
    # Window sums of a 0/1 map are small integers: exact in float32.
    sums = cv2.boxFilter(
        blur.astype(np.float32),
        -1,
        (patch_size, patch_size),
        normalize=False,
        borderType=cv2.BORDER_REFLECT_101,
    )
    cells = np.where(blur, np.uint8(3), np.uint8(2))
    cells[sums == 0] = 0
    cells[sums == full] = 1
    return cells


def extract_patches(
    image_u8: np.ndarray, cy: np.ndarray, cx: np.ndarray, patch_size: int
) -> np.ndarray:
    """Crop ``(len(cy), 3, P, P)`` uint8 patches centred at ``(cy, cx)`` (reflect-padded)."""
    r = patch_size // 2
    padded = np.pad(image_u8, ((r, r), (r, r), (0, 0)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(
        padded, (patch_size, patch_size), axis=(0, 1)
    )  # (H, W, 3, P, P)
    return np.ascontiguousarray(windows[cy, cx])


def waterfill(total: int, caps) -> np.ndarray:
    """Split ``total`` as evenly as possible over slots, none above its cap.

    The remainder goes to the first slots (permute ``caps`` beforehand for fairness).
    Returns int64 allocations summing to ``min(total, sum(caps))``.
    """
    caps = np.asarray(caps, dtype=np.int64)
    alloc = np.zeros_like(caps)
    remaining = int(min(total, caps.sum()))
    active = caps > 0
    while remaining > 0 and active.any():
        share = remaining // int(active.sum())
        if share == 0:
            alloc[np.flatnonzero(active)[:remaining]] += 1
            break
        give = np.where(active, np.minimum(caps - alloc, share), 0)
        alloc += give
        remaining -= int(give.sum())
        active = caps > alloc
    return alloc


# --- scan and plan --------------------------------------------------------------------------


@dataclass
class ImageInfo:
    """What one usable image offers: its size and the centres in each cell."""

    index: int
    stem: str
    blur_type: str
    height: int
    width: int
    available: tuple[int, int, int, int]


def scan_image(source, item, index: int, patch_size: int) -> ImageInfo | tuple[int, str]:
    """Load and check one item; an :class:`ImageInfo`, or ``(index, reason)`` to skip it."""
    try:
        image, blur = source.load(item)
    except BlursynthError as exc:
        return index, str(exc)
    h, w = blur.shape
    if h < patch_size or w < patch_size:
        return index, (
            f"{item.image_path}: image is {w}x{h}, smaller than the {patch_size}x{patch_size} patch"
        )
    available = np.bincount(cell_map(blur, patch_size).ravel(), minlength=4)
    return ImageInfo(index, item.stem, item.blur_type, h, w, tuple(int(a) for a in available))


@dataclass
class SplitPlan:
    """Images of one split and the patches each gives per cell."""

    name: str
    images: list[int]  # indices into the source items
    quotas: np.ndarray  # (len(images), 4) int64

    @property
    def rows(self) -> int:
        return int(self.quotas.sum())

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.quotas.sum(axis=1))]).astype(np.int64)


@dataclass
class Plan:
    """The whole dataset, decided before any patch is drawn."""

    params: PatchParams
    items: list
    infos: dict[int, ImageInfo]
    skipped: list[tuple[int, str]]
    eval_images: list[int]
    splits: dict[str, SplitPlan] = field(default_factory=dict)

    def counts(self) -> list[dict]:
        """Achieved counts per split x blur type x category x label (zeros left out)."""
        rows = []
        for name, sp in self.splits.items():
            for bt in BLUR_TYPES:
                sel = [k for k, i in enumerate(sp.images) if self.infos[i].blur_type == bt]
                if not sel:
                    continue
                per_cell = sp.quotas[sel].sum(axis=0)
                for (cat, label), n in zip(CELLS, per_cell, strict=True):
                    if n:
                        rows.append(
                            {
                                "split": name,
                                "blur_type": bt,
                                "category": CATEGORIES[cat],
                                "label": label,
                                "count": int(n),
                            }
                        )
        return rows

    def images_json(self) -> list[dict]:
        """Every source item with the split it went to (``image_index`` indexes this)."""
        where = {i: "eval" for i in self.eval_images}
        for name, sp in self.splits.items():
            where.update({i: name for i in sp.images})
        where.update({i: "skipped" for i, _ in self.skipped})
        return [
            {"stem": it.stem, "blur_type": it.blur_type, "split": where.get(k, "unused")}
            for k, it in enumerate(self.items)
        ]

    def fingerprint(self) -> str:
        """sha256 of everything that decides the shards' bytes."""
        h = hashlib.sha256()
        h.update(json.dumps(self.params.to_dict(), sort_keys=True).encode())
        h.update(json.dumps(self.images_json(), sort_keys=True).encode())
        for name in sorted(self.splits):
            sp = self.splits[name]
            h.update(name.encode())
            h.update(np.asarray(sp.images, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(sp.quotas, dtype=np.int64).tobytes())
        h.update(__version__.encode())
        return h.hexdigest()


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def assign_splits(
    infos: list[ImageInfo], eval_images: int, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Indices of eval, train and val images (per blur type: eval share, then 4:1)."""
    rng = _stream(seed, _SPLIT_STREAM)
    by_type = {bt: [i.index for i in infos if i.blur_type == bt] for bt in BLUR_TYPES}
    by_type = {bt: v for bt, v in by_type.items() if v}
    share, extra = divmod(eval_images, len(by_type))
    ev, train, val = [], [], []
    for k, (bt, indices) in enumerate(by_type.items()):
        order = [indices[j] for j in rng.permutation(len(indices))]
        n_eval = share + (k < extra)
        if len(order) - n_eval < 2:
            fix = (
                f"lower --eval-images (at most {max(0, len(order) - 2) * len(by_type)})"
                if n_eval
                else "add images"
            )
            raise BlursynthError(
                f"{len(order)} usable {bt} image(s): holding out {n_eval} for evaluation "
                f"leaves fewer than 2 for train and val (split by image); {fix}"
            )
        ev += order[:n_eval]
        rest = order[n_eval:]
        n_val = max(1, round(len(rest) / 5))
        val += rest[:n_val]
        train += rest[n_val:]
    return sorted(ev), sorted(train), sorted(val)


def plan_quotas(
    infos: dict[int, ImageInfo],
    images: list[int],
    target: int | None,
    per_image: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Patches per image per cell, ``(len(images), 4)`` int64 (see module docstring)."""
    avail = np.array([infos[i].available for i in images], dtype=np.int64).reshape(-1, 4)
    quotas = np.zeros_like(avail)
    if per_image is not None:
        for k in range(len(images)):
            quotas[k] = _split_cells(per_image, avail[k])
        return quotas
    types = np.array([infos[i].blur_type for i in images])
    present = [bt for bt in BLUR_TYPES if (types == bt).any()]
    per_type = waterfill(target, [avail[types == bt].sum() for bt in present])
    for bt, n_type in zip(present, per_type, strict=True):
        members = np.flatnonzero(types == bt)
        cell_totals = _split_cells(int(n_type), avail[members].sum(axis=0))
        for cell in range(4):
            order = members[rng.permutation(len(members))]  # fair remainders
            quotas[order, cell] = waterfill(int(cell_totals[cell]), avail[order, cell])
    return quotas


def _split_cells(total: int, avail: np.ndarray) -> np.ndarray:
    """Half per label; within a label 2/3 from the pure category, 1/3 mixed; capped.

    Categories so come out in thirds and labels in halves. A short cell's deficit goes to
    the other cell of its label first, to the other label only when the label is short.
    """
    halves = waterfill(total, [avail[0] + avail[2], avail[1] + avail[3]])
    out = np.zeros(4, dtype=np.int64)
    for n, pure, mixed in ((int(halves[0]), 0, 2), (int(halves[1]), 1, 3)):
        take_pure = min(int(avail[pure]), (2 * n + 1) // 3)
        out[mixed] = min(int(avail[mixed]), n - take_pure)
        out[pure] = min(int(avail[pure]), n - out[mixed])
    return out


def make_plan(
    params: PatchParams, source, items: list, *, jobs: int = 1, quiet: bool = True
) -> Plan:
    """Scan every image (in parallel) and decide splits and quotas."""
    from joblib import Parallel, delayed

    if not items:
        raise BlursynthError("no images found", params.root)
    with progressbar(length=len(items), label="scan images", quiet=quiet) as bar:
        results = []
        gen = Parallel(n_jobs=jobs, return_as="generator", batch_size=4)(
            delayed(scan_image)(source, it, k, params.patch_size) for k, it in enumerate(items)
        )
        for res in gen:
            results.append(res)
            bar.update(1)
    infos = {r.index: r for r in results if isinstance(r, ImageInfo)}
    skipped = sorted(r for r in results if not isinstance(r, ImageInfo))
    if not infos:
        raise BlursynthError(
            f"none of the {len(items)} image(s) is usable; first problem: {skipped[0][1]}",
            params.root,
        )
    ev, train, val = assign_splits(list(infos.values()), params.eval_images, params.seed)
    if params.only is not None:
        train = [i for i in train if infos[i].blur_type == params.only]
        val = [i for i in val if infos[i].blur_type == params.only]
        if not train or not val:
            raise BlursynthError(
                f"--only {params.only}: no {params.only} image in train or val", params.root
            )
    plan = Plan(params, items, infos, skipped, ev)
    targets = {"train": params.train_patches, "val": params.val_patches}
    for name, images in (("train", train), ("val", val)):
        rng = _stream(params.seed, _ORDER_STREAM, SPLIT_IDS[name])
        quotas = plan_quotas(infos, images, targets[name], params.per_image, rng)
        plan.splits[name] = SplitPlan(name, images, quotas)
    return plan


# --- sampling and writing -------------------------------------------------------------------


def sample_image(
    source, item, quotas: np.ndarray, patch_size: int, seed: int, split_id: int, image_index: int
) -> dict[str, np.ndarray]:
    """Draw one image's patches: ``quotas[c]`` distinct centres from each cell ``c``.

    Returns row-aligned arrays in cell order (``patches`` uint8 (n, 3, P, P), ``label``,
    ``category``, ``center_y``, ``center_x``).
    """
    image, blur = source.load(item)
    cells = cell_map(blur, patch_size).ravel()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split_id, image_index)))
    picks = []
    for cell, q in enumerate(quotas):
        if q:
            where = np.flatnonzero(cells == cell)
            picks.append(where[rng.choice(where.size, size=int(q), replace=False)])
    flat = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    cy, cx = np.divmod(flat, blur.shape[1])
    category = np.repeat(np.array([c for c, _ in CELLS], dtype=np.uint8), quotas)
    return {
        "patches": extract_patches(to_u8(image), cy, cx, patch_size),
        "label": blur[cy, cx].astype(np.uint8),
        "category": category,
        "center_y": cy.astype(np.int32),
        "center_x": cx.astype(np.int32),
    }


def _bucket_dtype(patch_size: int) -> np.dtype:
    return np.dtype(
        [
            ("pos", "<i8"),
            ("label", "u1"),
            ("blur_type", "u1"),
            ("category", "u1"),
            ("image_index", "<i4"),
            ("center_y", "<i4"),
            ("center_x", "<i4"),
            ("patches", "u1", (3, patch_size, patch_size)),
        ]
    )


def shuffled_positions(rows: int, seed: int, split_id: int) -> np.ndarray:
    """Final position of each row of the image-major order (a seeded permutation)."""
    dtype = np.int32 if rows < 2**31 else np.int64
    return _stream(seed, _SHUFFLE_STREAM, split_id).permutation(rows).astype(dtype)


def _complete_shard(path: Path, split: str, plan_sha: str, rows: int) -> ShardRecord | None:
    """The record of a finished shard from an earlier run of the same plan, else None."""
    if not path.exists():
        return None
    try:
        attrs = shard_attrs(path)
    except OSError:
        return None
    if (
        attrs.get("plan_sha256") != plan_sha
        or attrs.get("split") != split
        or attrs.get("rows") != rows
    ):
        return None
    return ShardRecord(path.name, rows, sha256_file(path))


def write_split(
    plan: Plan, name: str, source, out: Path, attrs: dict, *, jobs: int = 1, quiet: bool = True
) -> tuple[list[ShardRecord], int]:
    """Sample one split and write its shards, reusing shards already complete.

    Returns the shard records and how many shards were reused.
    """
    p = plan.params
    sp = plan.splits[name]
    writer = ShardWriter(
        out,
        name,
        sp.rows,
        p.rows_per_shard,
        p.patch_size,
        p.format,
        {**attrs, "images": _split_images_attr(plan, sp)},
    )
    done = {
        k: _complete_shard(writer.shard_path(k), name, attrs["plan_sha256"], writer.shard_rows(k))
        for k in range(writer.num_shards)
    }
    todo = [k for k, rec in done.items() if rec is None and writer.shard_rows(k)]
    buckets = out / f".buckets-{name}"
    try:
        if todo:
            _fill_buckets(plan, name, source, buckets, todo, jobs=jobs, quiet=quiet)
        with (
            writer,
            progressbar(range(writer.num_shards), label=f"write {name}", quiet=quiet) as bar,
        ):
            for k in bar:
                if done[k] is not None:
                    writer.skip_shard(done[k])
                elif k in todo:
                    _write_bucket(buckets / f"{k:05d}.bin", writer, k, p.patch_size)
    finally:
        shutil.rmtree(buckets, ignore_errors=True)
    return writer.records, writer.num_shards - len(todo)


def _fill_buckets(
    plan: Plan, name: str, source, buckets: Path, todo: list[int], *, jobs: int, quiet: bool
) -> None:
    """Pass 1: sample every image; append each row to the bucket of the shard it lands in."""
    from joblib import Parallel, delayed

    p = plan.params
    sp = plan.splits[name]
    split_id = SPLIT_IDS[name]
    dtype = _bucket_dtype(p.patch_size)
    positions = shuffled_positions(sp.rows, p.seed, split_id)
    offsets = sp.offsets
    want = np.zeros(-(-sp.rows // p.rows_per_shard), dtype=bool)
    want[todo] = True
    shutil.rmtree(buckets, ignore_errors=True)
    buckets.mkdir()
    files = {k: open(buckets / f"{k:05d}.bin", "wb") for k in todo}
    try:
        tasks = [k for k in range(len(sp.images)) if sp.quotas[k].sum()]
        # Ordered generator: the main process holds at most a few images' patches.
        gen = Parallel(n_jobs=jobs, return_as="generator", batch_size=1)(
            delayed(sample_image)(
                source,
                plan.items[sp.images[k]],
                sp.quotas[k],
                p.patch_size,
                p.seed,
                split_id,
                sp.images[k],
            )
            for k in tasks
        )
        with progressbar(length=len(tasks), label=f"sample {name}", quiet=quiet) as bar:
            for k, res in zip(tasks, gen, strict=True):
                pos = positions[offsets[k] : offsets[k + 1]]
                shard = pos // p.rows_per_shard
                rec = np.empty(len(pos), dtype=dtype)
                rec["pos"] = pos
                rec["blur_type"] = BLUR_TYPES.index(plan.infos[sp.images[k]].blur_type)
                rec["image_index"] = sp.images[k]
                for key, value in res.items():
                    rec[key] = value
                for s in np.unique(shard[want[shard]]):
                    rec[shard == s].tofile(files[int(s)])
                bar.update(1)
    finally:
        for f in files.values():
            f.close()


def _write_bucket(
    bucket: Path, writer: ShardWriter, k: int, patch_size: int, block_rows: int = 8192
) -> None:
    """Pass 2: put one shard's rows in their planned order and write them."""
    dtype = _bucket_dtype(patch_size)
    rec = np.fromfile(bucket, dtype=dtype)
    order = np.argsort(rec["pos"], kind="stable")
    expected = np.arange(len(rec)) + k * writer.rows_per_shard
    if len(rec) != writer.shard_rows(k) or (rec["pos"][order] != expected).any():
        raise RuntimeError(f"{bucket}: rows do not match the plan")
    for a in range(0, len(rec), block_rows):
        block = rec[order[a : a + block_rows]]
        writer.write({key: block[key] for key in dtype.names if key != "pos"})
    bucket.unlink()


def _split_images_attr(plan: Plan, sp: SplitPlan) -> list[dict]:
    return [
        {"index": i, "stem": plan.items[i].stem, "blur_type": plan.infos[i].blur_type}
        for i in sp.images
    ]


@dataclass
class BuildReport:
    """What :func:`build_patch_dataset` did."""

    path: Path
    rows: dict[str, int]
    counts: list[dict]
    skipped: list[tuple[str, str]]
    reused_shards: int = 0


def build_patch_dataset(
    params: PatchParams, out, *, jobs: int = 1, quiet: bool = True
) -> BuildReport:
    """Build (or finish building) a patch dataset in ``out``.

    Shards are written first under temporary names, then ``eval.json``, ``manifest.json``,
    ``README.md`` and ``SHA256SUMS`` last: a folder without ``SHA256SUMS`` is unfinished, and
    rerunning the same command completes it, reusing the shards already finished.

    Parameters
    ----------
    params : PatchParams
    out : path
        Dataset folder (created).
    jobs : int
        Parallel image workers; the output does not depend on it.
    quiet : bool
        No progress bars.
    """
    from blursynth.dataset_card import dataset_card

    out = Path(out)
    source, items = open_items(params)
    plan = make_plan(params, source, items, jobs=jobs, quiet=quiet)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (CHECKSUMS, MANIFEST, CARD):  # the folder is unfinished from now on
        (out / stale).unlink(missing_ok=True)
    _remove_stale_temporaries(out)
    plan_sha = plan.fingerprint()
    attrs = {
        "schema_version": manifest_base()["schema_version"],
        "blursynth_version": __version__,
        "plan_sha256": plan_sha,
        "params": params.to_dict(),
        "source": params.source,
        "seed": params.seed,
        "patch_size": params.patch_size,
        "blur_types": list(BLUR_TYPES),
        "categories": list(CATEGORIES),
        "label_meaning": "1 = centre pixel blurred",
    }
    records = {}
    reused = 0
    for name in SPLITS:
        count = max(1, -(-plan.splits[name].rows // params.rows_per_shard))
        planned = {shard_name(name, k, count) for k in range(count)}
        for old in out.glob(f"{name}-*-of-*.h5"):  # shards of a plan with another shard count
            if old.name not in planned:
                old.unlink()
        records[name], n_reused = write_split(
            plan, name, source, out, attrs, jobs=jobs, quiet=quiet
        )
        reused += n_reused
    eval_items = [
        {"stem": items[i].stem, "blur_type": plan.infos[i].blur_type} for i in plan.eval_images
    ]
    write_json(
        out / EVAL_LIST,
        {
            "source": params.source,
            "root": params.root,
            "options": params.source_options(),
            "items": eval_items,
        },
    )
    counts = plan.counts()
    manifest = {
        **manifest_base(),
        "plan_sha256": plan_sha,
        "params": params.to_dict(),
        "command": params.command(),
        "format": params.format,
        "fields": _fields_manifest(params),
        "splits": {
            name: {
                "rows": plan.splits[name].rows,
                "images": len(plan.splits[name].images),
                "shards": [asdict(r) for r in records[name]],
            }
            for name in SPLITS
        },
        "eval_images": eval_items,
        "eval_list": EVAL_LIST,
        "eval_sha256": sha256_file(out / EVAL_LIST),
        "images": plan.images_json(),
        "skipped": [{"stem": items[i].stem, "reason": why} for i, why in plan.skipped],
        "counts": counts,
    }
    if params.format == "caffe":
        # Caffe/Mocha HDF5 layers read a list of shard paths; absolute, since Caffe resolves
        # them from its working directory (so these lists are not checksummed).
        for name in SPLITS:
            write_text(
                out / f"{name}.txt", "".join(f"{(out / r.file).resolve()}\n" for r in records[name])
            )
    write_json(out / MANIFEST, manifest)
    write_text(out / CARD, dataset_card(manifest))
    from blursynth.shards import write_checksums

    known = {r.file: r.sha256 for name in SPLITS for r in records[name]}
    write_checksums(out, [*known, EVAL_LIST, MANIFEST, CARD], known)
    return BuildReport(
        out,
        {n: plan.splits[n].rows for n in SPLITS},
        counts,
        [(items[i].stem, why) for i, why in plan.skipped],
        reused,
    )


def _fields_manifest(params: PatchParams) -> dict:
    from blursynth.shards import disk_field_name

    return {
        disk_field_name(name, params.format): {"dtype": str(dtype), "shape": ["N", *shape]}
        for name, (dtype, shape) in field_specs(params.patch_size, params.format).items()
    }


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary shards of a killed run (``*.h5.tmp-<pid>``) and bucket folders."""
    for tmp in out.glob("*.h5.tmp-*"):
        tmp.unlink()
    for buckets in out.glob(".buckets-*"):
        shutil.rmtree(buckets)
