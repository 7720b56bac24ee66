"""Dense datasets: S x S tiles of whole images with their S x S label maps.

* **Coverage**: each image is cut on a grid of tiles that overlaps just enough to cover
  every pixel (:func:`tile_origins`), its inner tiles jittered by a per-image stream
  (``--no-jitter``: an even grid), plus random tiles up to ``--tiles-per-image``; an image
  smaller than S along an axis is padded (edge-replicated pixels, label 255 = no label).
  Images under 31 px are skipped, as ``patches`` skips them.
* **Labels**: 0 sharp, 1 blurred; with ``classes=3``, 0 sharp, 1 motion, 2 defocus (the blur
  type of the source image).
* **Splits**: exactly those of a patch dataset with the same source and seed
  (:func:`blursynth.patches.make_plan`), so both model kinds are scored on the same held-out
  images.
* **Order**: rows are shuffled within a split by ``stream(seed, SHUFFLE_STREAM, split)``;
  images are cut in parallel and gathered in order, so ``--jobs`` never changes a byte.
* **Writing**: a split's tiles are gathered in memory (about S*S*4 bytes each: 0.26 MB at
  S = 256, 1 GB for CUHK's training split), then written as shards under temporary names;
  the manifest and ``SHA256SUMS`` come last. A folder without ``SHA256SUMS`` is unfinished:
  rerunning the command rewrites it whole, byte-identical to an uninterrupted build.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from blursynth import __version__
from blursynth.dataset_card import dataset_card
from blursynth.errors import BlursynthError
from blursynth.imageio import to_u8, write_json, write_text
from blursynth.patch_plan import SHUFFLE_STREAM, SPLIT_IDS, Plan, stream
from blursynth.progress import progressbar
from blursynth.schema import (
    BLUR_TYPES,
    CARD,
    CHECKSUMS,
    CLASS_NAMES,
    EVAL_LIST,
    MANIFEST,
    SCHEMA_VERSION,
    SPLITS,
    EvalList,
    Manifest,
    ShardEntry,
    SplitEntry,
    TileParams,
    published_root,
)
from blursynth.shards import ShardWriter, field_specs, sha256_file, write_checksums
from blursynth.shards.writer import remove_sidecars
from blursynth.sources import open_items
from blursynth.workers import die_with_parent

IGNORE = 255
TILE_STREAM = 2000
"""Purpose key of an image's tile-position stream: ``SeedSequence(seed, (2000, index))``."""


def tile_origins(length: int, size: int, rng: np.random.Generator | None = None) -> list[int]:
    """Start positions of tiles of ``size`` that cover ``[0, length)`` with fewest tiles.

    One tile at 0 when ``length <= size`` (the rest is padding); otherwise
    ``ceil(length / size)`` tiles from 0 to ``length - size``: spread evenly, or with ``rng``
    each inner start drawn uniformly among the positions that still let the tiles cover
    every pixel (no gap between neighbours, the last one reachable).
    """
    if length <= size:
        return [0]
    n = -(-length // size)
    if rng is None or n < 3:
        return [int(v) for v in np.rint(np.linspace(0, length - size, n))]
    last = length - size
    starts = [0]
    for i in range(1, n - 1):
        lo = max(starts[-1], last - (n - 1 - i) * size)
        hi = min(starts[-1] + size, last)
        starts.append(int(rng.integers(lo, hi + 1)))
    return [*starts, last]


def label_map(blur: np.ndarray, blur_type: str, classes: int) -> np.ndarray:
    """uint8 label map of a bool blur mask: 0/1, or 0/1 (motion)/2 (defocus)."""
    if classes == 2:
        return blur.astype(np.uint8)
    if blur_type not in ("motion", "defocus"):
        raise BlursynthError(f"--classes 3 needs a known blur type, got {blur_type!r}")
    return blur.astype(np.uint8) * np.uint8(1 if blur_type == "motion" else 2)


def cut_tiles(
    image_u8: np.ndarray,
    labels: np.ndarray,
    size: int,
    rng: np.random.Generator | None = None,
    count: int | None = None,
) -> dict[str, np.ndarray]:
    """The tiles of one image: ``image`` (n, 3, S, S), ``label`` (n, S, S), ``y``, ``x``.

    The covering grid (:func:`tile_origins`, jittered by ``rng`` when given), then tiles at
    random positions up to ``count`` (drawn from ``rng``, or a fixed stream without one).
    """
    h, w = labels.shape
    ph, pw = max(0, size - h), max(0, size - w)
    if ph or pw:
        image_u8 = np.pad(image_u8, ((0, ph), (0, pw), (0, 0)), mode="edge")
        labels = np.pad(labels, ((0, ph), (0, pw)), constant_values=IGNORE)
    origins = [(y, x) for y in tile_origins(h, size, rng) for x in tile_origins(w, size, rng)]
    if count is not None and count > len(origins):
        draw = rng if rng is not None else np.random.default_rng(0)
        highs = [max(h - size, 0) + 1, max(w - size, 0) + 1]
        extra = draw.integers(0, highs, size=(count - len(origins), 2))
        origins += [(int(y), int(x)) for y, x in extra]
    ys = np.array([o[0] for o in origins], dtype=np.int32)
    xs = np.array([o[1] for o in origins], dtype=np.int32)
    return {
        "image": np.stack(
            [image_u8[y : y + size, x : x + size].transpose(2, 0, 1) for y, x in origins]
        ),
        "label": np.stack([labels[y : y + size, x : x + size] for y, x in origins]),
        "y": ys,
        "x": xs,
    }


def tile_image(source, item, index: int, params: TileParams) -> dict[str, np.ndarray]:
    """Load one image and cut it into tiles with provenance (row-aligned arrays)."""
    die_with_parent()
    image, blur = source.load(item)
    seq = np.random.SeedSequence(params.seed, spawn_key=(TILE_STREAM, index))
    rng = np.random.default_rng(seq) if params.jitter or params.tiles_per_image else None
    labels = label_map(blur, item.blur_type, params.classes)
    rows = cut_tiles(
        to_u8(image),
        labels,
        params.tile_size,
        rng if params.jitter else None,
        params.tiles_per_image,
    )
    n = len(rows["y"])
    rows["blur_type"] = np.full(n, BLUR_TYPES.index(item.blur_type), dtype=np.uint8)
    rows["image_index"] = np.full(n, index, dtype=np.int32)
    return rows


@dataclass
class TileReport:
    """What :func:`build_tile_dataset` did."""

    path: Path
    rows: dict[str, int]
    counts: list[dict]
    skipped: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)


def build_tile_dataset(params: TileParams, out, *, jobs: int = 1, quiet: bool = True) -> TileReport:
    """Build a tile dataset in ``out`` (see the module docstring).

    Raises
    ------
    BlursynthError
        As for patches (bad source, too few images), or a folder holding another dataset.
    """
    from blursynth.locking import folder_lock

    with folder_lock(out, "tiles"):
        return _build_locked(params, Path(out), jobs=jobs, quiet=quiet)


def _build_locked(params: TileParams, out: Path, *, jobs: int, quiet: bool) -> TileReport:
    from blursynth.patches import make_plan

    source, items = open_items(params.source, params.root, **params.source_options())
    plan = make_plan(params.split_params(), source, items, jobs=jobs, quiet=quiet)
    published = replace(params, root=published_root(params.root, out))
    out.mkdir(parents=True, exist_ok=True)
    for stale in (CHECKSUMS, MANIFEST, CARD):  # the folder is unfinished from now on
        (out / stale).unlink(missing_ok=True)
    for tmp in out.glob("*.h5.tmp-*"):
        tmp.unlink()
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "blursynth_version": __version__,
        "plan_sha256": plan.fingerprint(),
        "params": published.to_dict(),
        "kind": "tiles",
        "label_meaning": ", ".join(f"{k} = {n}" for k, n in enumerate(CLASS_NAMES[params.classes]))
        + ", 255 = none",
    }
    records, counts = {}, []
    for name in SPLITS:
        rows = _gather(plan, name, source, params, jobs=jobs, quiet=quiet)
        records[name] = _write_split(rows, name, out, params, attrs)
        counts += _counts(rows, name, params.classes)
    _write_metadata(plan, published, records, counts, out, attrs["plan_sha256"])
    blurred = sum(c.get(k, 0) for c in counts for k in ("blurred", "motion", "defocus"))
    warnings = (
        []
        if blurred or not counts
        else ["every labelled pixel is sharp: no mask has a blurred pixel (is --polarity right?)"]
    )
    return TileReport(
        out,
        {n: sum(r.rows for r in records[n]) for n in SPLITS},
        counts,
        [(e["stem"], e["reason"]) for e in plan.skipped_entries()],
        warnings,
    )


def _gather(plan: Plan, name: str, source, params: TileParams, *, jobs: int, quiet: bool):
    """Every tile of a split's images, shuffled by the split's seeded permutation."""
    from joblib import Parallel, delayed

    images = plan.splits[name].images
    gen = Parallel(n_jobs=jobs, return_as="generator", batch_size=1)(
        delayed(tile_image)(source, plan.items[i], i, params) for i in images
    )
    parts = []
    with progressbar(length=len(images), label=f"tile {name}", quiet=quiet) as bar:
        for res in gen:
            parts.append(res)
            bar.update(1)
    if not parts:
        spec = field_specs(params.tile_size, "hdf5", "tiles")
        return {k: np.zeros((0, *shape), dtype) for k, (dtype, shape) in spec.items()}
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = stream(params.seed, SHUFFLE_STREAM, SPLIT_IDS[name]).permutation(len(rows["y"]))
    return {k: v[order] for k, v in rows.items()}


def _write_split(rows: dict, name: str, out: Path, params: TileParams, attrs: dict) -> list:
    n = len(rows["y"])
    for old in out.glob(f"{name}-*-of-*.h5"):
        old.unlink()
    with ShardWriter(
        out, name, n, params.rows_per_shard, params.tile_size, "hdf5", attrs, kind="tiles"
    ) as writer:
        for a in range(0, n, 256):
            writer.write({k: v[a : a + 256] for k, v in rows.items()})
    return writer.records


def _counts(rows: dict, split: str, classes: int) -> list[dict]:
    """Tiles and labelled pixels per class, per blur type of one split."""
    out = []
    for code, bt in enumerate(BLUR_TYPES):
        sel = rows["blur_type"] == code
        if not sel.any():
            continue
        per_class = np.bincount(rows["label"][sel].ravel(), minlength=256)
        row = {"split": split, "blur_type": bt, "tiles": int(sel.sum())}
        row.update({cls: int(per_class[k]) for k, cls in enumerate(CLASS_NAMES[classes])})
        out.append(row)
    return out


def _write_metadata(
    plan: Plan, params: TileParams, records: dict, counts: list, out: Path, plan_sha: str
) -> None:
    entries = plan.image_entries()
    held_out = tuple(entries[i] for i in plan.eval_images)
    write_json(
        out / EVAL_LIST,
        EvalList(params.source, params.root, params.source_options(), held_out).to_dict(),
    )
    spec = field_specs(params.tile_size, "hdf5", "tiles")
    manifest = Manifest(
        kind="tiles",
        plan_sha256=plan_sha,
        params=params.to_dict(),
        command=params.command(),
        fields={k: {"dtype": str(d), "shape": ["N", *s]} for k, (d, s) in spec.items()},
        splits={
            n: SplitEntry(
                rows=sum(r.rows for r in records[n]),
                images=len(plan.splits[n].images),
                shards=tuple(ShardEntry(r.file, r.rows, r.sha256) for r in records[n]),
            )
            for n in SPLITS
        },
        eval_images=held_out,
        eval_list=EVAL_LIST,
        eval_sha256=sha256_file(out / EVAL_LIST),
        images=tuple(entries),
        skipped=tuple(plan.skipped_entries()),
        counts=tuple(counts),
        blursynth_version=__version__,
    )
    write_json(out / MANIFEST, manifest.to_dict())
    write_text(out / CARD, dataset_card(manifest))
    known = {r.file: r.sha256 for n in SPLITS for r in records[n]}
    write_checksums(out, [*known, EVAL_LIST, MANIFEST, CARD], known)
    remove_sidecars(out)
