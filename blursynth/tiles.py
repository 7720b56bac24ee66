"""Dense datasets: S x S tiles of whole images with their S x S label maps.

* **Coverage**: each image is cut on a grid of tiles that overlaps just enough to cover
  every pixel (:func:`tile_origins`), its inner tiles jittered by a per-image stream
  (``--no-jitter``: an even grid), plus random tiles up to ``--tiles-per-image``; an image
  smaller than S along an axis is padded (edge-replicated pixels, label 255 = no label).
  Images under 31 px are skipped, as ``patches`` skips them.
* **Labels**: 0 sharp, 1 blurred; with ``classes=3``, 0 sharp, 1 motion, 2 defocus (the blur
  type of the source image).
* **Splits**: exactly those of a patch dataset with the same source and seed
  (:func:`blursynth.build.make_plan`), so both model kinds are scored on the same held-out
  images.
* **Order**: rows are shuffled within a split by ``stream(seed, SHUFFLE_STREAM, split)``;
  each image's tile count is known from the scan (:func:`tile_count`), so every tile's
  final row is known before it is cut, and ``--jobs`` never changes a byte.
* **Writing**: as for patches, each image is decoded once (:mod:`blursynth.decoded`);
  workers draw each image's tile origins (and count its labelled pixels), and one task per
  shard cuts its tiles from the kept images and writes the shard under a temporary name
  (:mod:`blursynth.shards.assembly`). Memory follows one shard per worker, not the split.
  The manifest and ``SHA256SUMS`` come last. A folder without ``SHA256SUMS`` is
  unfinished: rerunning the command rewrites it whole, byte-identical to an uninterrupted
  build.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from blursynth import __version__
from blursynth.build import (
    SplitShards,
    dataset_build,
    make_plan,
    publish,
    recorded_digests,
    remove_other_shards,
    reusable_shards,
    start_unfinished,
    write_splits,
)
from blursynth.decoded import DecodedCache, cells_of, classes_of
from blursynth.errors import BlursynthError
from blursynth.imageio import write_json
from blursynth.parallel import Backend, run_tasks
from blursynth.patch_plan import SHUFFLE_STREAM, SPLIT_IDS, Plan, stream
from blursynth.progress import progressbar
from blursynth.schema import (
    BLUR_TYPES,
    CLASS_NAMES,
    EVAL_LIST,
    SCHEMA_VERSION,
    SPLITS,
    EvalList,
    Manifest,
    ShardEntry,
    SplitEntry,
    TileParams,
    published_root,
)
from blursynth.shards import ShardWriter, field_specs, sha256_file
from blursynth.shards.assembly import SplitAssembly
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


def tile_grid(
    height: int,
    width: int,
    size: int,
    rng: np.random.Generator | None = None,
    count: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-left ``y``, ``x`` (int32) of an image's tiles: the covering grid
    (:func:`tile_origins`, jittered by ``rng`` when given), then tiles at random positions
    up to ``count`` (drawn from ``rng``, or a fixed stream without one)."""
    origins = [
        (y, x) for y in tile_origins(height, size, rng) for x in tile_origins(width, size, rng)
    ]
    if count is not None and count > len(origins):
        draw = rng if rng is not None else np.random.default_rng(0)
        highs = [max(height - size, 0) + 1, max(width - size, 0) + 1]
        extra = draw.integers(0, highs, size=(count - len(origins), 2))
        origins += [(int(y), int(x)) for y, x in extra]
    ys = np.array([o[0] for o in origins], dtype=np.int32)
    xs = np.array([o[1] for o in origins], dtype=np.int32)
    return ys, xs


def tiles_at(
    planar: np.ndarray,
    labels: np.ndarray,
    size: int,
    ys: np.ndarray,
    xs: np.ndarray,
    out: dict[str, np.ndarray] | None = None,
    dest: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Tiles of a planar image, uint8 (3, H, W), and its label map at origins ``ys, xs``:
    ``image`` (n, 3, S, S), ``label`` (n, S, S). An image smaller than S is padded
    (edge pixels; label 255 = no label). With ``out`` (those two fields, M rows) and
    ``dest`` (``len(ys)`` row indices into them), the tiles go straight to ``out[...][dest]``
    and ``out`` is returned."""
    h, w = labels.shape
    ph, pw = max(0, size - h), max(0, size - w)
    if ph or pw:
        planar = np.pad(planar, ((0, 0), (0, ph), (0, pw)), mode="edge")
        labels = np.pad(labels, ((0, ph), (0, pw)), constant_values=IGNORE)
    if out is None:
        out = {
            "image": np.empty((len(ys), 3, size, size), dtype=np.uint8),
            "label": np.empty((len(ys), size, size), dtype=np.uint8),
        }
        dest = np.arange(len(ys))
    image, label = out["image"], out["label"]
    for i, y, x in zip(dest.tolist(), ys.tolist(), xs.tolist(), strict=True):
        image[i] = planar[:, y : y + size, x : x + size]
        label[i] = labels[y : y + size, x : x + size]
    return out


def cut_tiles(
    image_u8: np.ndarray,
    labels: np.ndarray,
    size: int,
    rng: np.random.Generator | None = None,
    count: int | None = None,
) -> dict[str, np.ndarray]:
    """The tiles of one image, uint8 (H, W, 3): ``image`` (n, 3, S, S), ``label`` (n, S, S),
    ``y``, ``x`` at :func:`tile_grid`'s origins."""
    ys, xs = tile_grid(*labels.shape, size, rng, count)
    planar = np.ascontiguousarray(image_u8.transpose(2, 0, 1))
    return {**tiles_at(planar, labels, size, ys, xs), "y": ys, "x": xs}


def tile_count(height: int, width: int, params: TileParams) -> int:
    """How many tiles :func:`tile_grid` gives an image of this size (before drawing)."""
    size = params.tile_size
    n = len(tile_origins(height, size)) * len(tile_origins(width, size))
    return max(n, params.tiles_per_image or 0)


def _labels(truth: np.ndarray, blur_type: str, params: TileParams) -> np.ndarray:
    """An image's label map from its kept truth plane (:mod:`blursynth.decoded`): the blur
    bit, or with 3 classes a mixed synthetic image's own per-pixel blur types."""
    if params.classes == 3:
        classes = classes_of(truth)
        if classes is not None:
            return classes
    return label_map(cells_of(truth) & np.uint8(1), blur_type, params.classes)


def draw_tiles(
    index: int, blur_type: str, params: TileParams, cache: DecodedCache
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One image's tile origins and provenance (a worker's task), and its labelled pixels
    per class value (256 bins) over those tiles."""
    die_with_parent()
    labels = _labels(cache.truth(index), blur_type, params)
    seq = np.random.SeedSequence(params.seed, spawn_key=(TILE_STREAM, index))
    rng = np.random.default_rng(seq) if params.jitter or params.tiles_per_image else None
    ys, xs = tile_grid(
        *labels.shape, params.tile_size, rng if params.jitter else None, params.tiles_per_image
    )
    pixels = np.zeros(256, np.int64)
    padded = np.pad(
        labels,
        (
            (0, max(0, params.tile_size - labels.shape[0])),
            (0, max(0, params.tile_size - labels.shape[1])),
        ),
        constant_values=IGNORE,
    )
    values = (*range(params.classes), IGNORE)  # what a label map holds
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        tile = padded[y : y + params.tile_size, x : x + params.tile_size]
        # one uint8 comparison per value: several times faster than a bincount, which
        # widens the tile to int64
        counts = [np.count_nonzero(tile == v) for v in values]
        if sum(counts) == tile.size:
            pixels[list(values)] += counts
        else:  # a value no label map should hold: count everything
            pixels += np.bincount(tile.ravel(), minlength=256)
    n = len(ys)
    rows = {
        "y": ys,
        "x": xs,
        "blur_type": np.full(n, BLUR_TYPES.index(blur_type), dtype=np.uint8),
        "image_index": np.full(n, index, dtype=np.int32),
    }
    return rows, pixels


@dataclass(frozen=True)
class TileCutter:
    """The :class:`~blursynth.shards.assembly.RowCutter` of a tile shard: an image's tiles
    and label maps at their origins, cut from the decoded cache."""

    cache: DecodedCache
    params: TileParams
    dtypes = {"image": np.dtype(np.uint8), "label": np.dtype(np.uint8)}

    def __call__(self, index: int, rows: dict, out: dict, dest: np.ndarray) -> None:
        blur_type = BLUR_TYPES[int(rows["blur_type"][0])]
        kept = self.cache.load(index)
        labels = _labels(kept[3], blur_type, self.params)
        tiles_at(kept[:3], labels, self.params.tile_size, rows["y"], rows["x"], out, dest)


@dataclass
class TileReport:
    """What :func:`build_tile_dataset` did."""

    path: Path
    rows: dict[str, int]
    counts: list[dict]
    skipped: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)
    reused_shards: int = 0  # whole shards of an earlier build of the same plan, kept


def build_tile_dataset(
    params: TileParams,
    out,
    *,
    jobs: int = 1,
    quiet: bool = True,
    backend: Backend | None = None,
    force: bool = False,
) -> TileReport:
    """Build a tile dataset in ``out`` (see the module docstring).

    Raises
    ------
    BlursynthError
        As for patches (bad source, too few images), or a folder holding another dataset.
    """
    recorded = replace(params, root=published_root(params.root, out)).to_dict()
    with dataset_build(
        out, "tiles", backend, params.root, recorded, force, classes=params.classes == 3
    ) as cache:
        return _build_locked(params, Path(out), jobs=jobs, quiet=quiet, cache=cache)


def _build_locked(
    params: TileParams, out: Path, *, jobs: int, quiet: bool, cache: DecodedCache
) -> TileReport:
    source, items = open_items(params.source, params.root, **params.source_options())
    plan = make_plan(params.split_params(), source, items, jobs=jobs, quiet=quiet, cache=cache)
    published = replace(params, root=published_root(params.root, out))
    out.mkdir(parents=True, exist_ok=True)
    recorded = recorded_digests(out)
    start_unfinished(out)
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "blursynth_version": __version__,
        "plan_sha256": plan.fingerprint(),
        "params": published.to_dict(),
        "kind": "tiles",
        "label_meaning": ", ".join(f"{k} = {n}" for k, n in enumerate(CLASS_NAMES[params.classes]))
        + ", 255 = none",
    }
    drawn = {
        name: _draw_split(
            plan, name, out, params, attrs, jobs=jobs, quiet=quiet, cache=cache, recorded=recorded
        )
        for name in SPLITS
    }
    counts = [row for _, split_counts in drawn.values() for row in split_counts]
    records = write_splits({name: sh for name, (sh, _) in drawn.items()}, jobs, quiet)
    _write_metadata(plan, published, records, counts, out, attrs["plan_sha256"])
    blurred = sum(c.get(k, 0) for c in counts for k in ("blurred", "motion", "defocus"))
    warnings = (
        []
        if blurred or not counts
        else ["every labelled pixel is sharp: no mask has a blurred pixel (is --polarity right?)"]
    )
    warnings += _padding_warning(plan, params.tile_size)
    return TileReport(
        out,
        {n: sum(r.rows for r in records[n]) for n in SPLITS},
        counts,
        [(e["stem"], e["reason"]) for e in plan.skipped_entries()],
        warnings,
        sum(sh.reused for sh, _ in drawn.values()),
    )


def _padding_warning(plan: Plan, size: int) -> list[str]:
    """Say how many images are smaller than the tiles along an axis (padded, label 255)."""
    small = [i for i in plan.infos.values() if min(i.height, i.width) < size]
    if not small:
        return []
    return [
        f"{len(small)} image(s) are smaller than --tile-size {size} along an axis (e.g. "
        f"{small[0].stem}: {small[0].width}x{small[0].height}); their tiles are padded, the "
        "padding labelled 255 (not trained on)"
    ]


def _draw_split(
    plan: Plan,
    name: str,
    out: Path,
    params: TileParams,
    attrs: dict,
    *,
    jobs: int,
    quiet: bool,
    cache: DecodedCache,
    recorded: dict[str, str],
) -> tuple[SplitShards, list[dict]]:
    """Draw a split's tiles (origins, shuffled by the split's seeded permutation): its shards
    (those of an earlier build still whole, and the tasks that write the others:
    :mod:`blursynth.shards.assembly`) and its counts. Every image is drawn, also when every
    shard is reused: the counts come from the draw."""
    from joblib import delayed

    images = plan.splits[name].images
    sizes = [tile_count(plan.infos[i].height, plan.infos[i].width, params) for i in images]
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    n = int(offsets[-1])
    # row j of the split is the order[j]-th tile in image order
    order = stream(params.seed, SHUFFLE_STREAM, SPLIT_IDS[name]).permutation(n)
    positions = np.empty(n, dtype=np.int64)
    positions[order] = np.arange(n)
    remove_other_shards(out, name, n, params.rows_per_shard)
    specs = field_specs(params.tile_size, "hdf5", "tiles")
    layout = ShardWriter(
        out, name, n, params.rows_per_shard, specs, "hdf5", attrs, record_digests=True
    )
    done = reusable_shards(layout, attrs["plan_sha256"], recorded)
    split = SplitAssembly(layout)
    pixels = {code: np.zeros(256, np.int64) for code in range(len(BLUR_TYPES))}
    tiles = dict.fromkeys(pixels, 0)
    calls = (delayed(draw_tiles)(i, plan.infos[i].blur_type, params, cache) for i in images)
    with progressbar(length=len(images), label=f"draw {name}", quiet=quiet) as bar:
        for k, (rows, hist) in enumerate(run_tasks(calls, jobs=jobs)):
            if len(rows["y"]) != sizes[k]:
                raise RuntimeError(f"image {images[k]}: {len(rows['y'])} tiles, {sizes[k]} planned")
            split.take(images[k], positions[offsets[k] : offsets[k + 1]], rows)
            code = BLUR_TYPES.index(plan.infos[images[k]].blur_type)
            pixels[code] += hist
            tiles[code] += sizes[k]
            bar.update(1)
    todo = [k for k, rec in done.items() if rec is None]
    shard_jobs = split.shard_jobs(todo, TileCutter(cache, params)) if todo else []
    return SplitShards(done, shard_jobs, split), _counts(name, tiles, pixels, params.classes)


def _counts(split: str, tiles: dict, pixels: dict, classes: int) -> list[dict]:
    """Tiles and labelled pixels per class, per blur type of one split."""
    out = []
    for code, bt in enumerate(BLUR_TYPES):
        if not tiles[code]:
            continue
        row = {"split": split, "blur_type": bt, "tiles": int(tiles[code])}
        row.update({cls: int(pixels[code][k]) for k, cls in enumerate(CLASS_NAMES[classes])})
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
    publish(out, manifest, records)
