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
* **Writing** is in the workers, every byte once: rows get their final shuffled position
  from a plan; the scan keeps each decoded image (:mod:`blursynth.decoded`); a light pass
  draws each image's centres (scalars: a few bytes a row, kept by the main process); then
  one task per shard cuts its patches from the kept images, writes the shard under a
  temporary name, renames it and hashes it (:mod:`blursynth.shards.assembly`).
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
from blursynth.decoded import DecodedCache
from blursynth.imageio import write_json, write_text
from blursynth.parallel import Backend, run_tasks
from blursynth.patch_plan import (
    CELLS,
    SHUFFLE_STREAM,
    SPLIT_IDS,
    Plan,
    SplitPlan,
    stream,
)
from blursynth.progress import progressbar, warn
from blursynth.schema import (
    BLUR_TYPES,
    CATEGORIES,
    EVAL_LIST,
    SCHEMA_VERSION,
    SPLITS,
    EvalList,
    Manifest,
    PatchParams,
    ShardEntry,
    SplitEntry,
    published_root,
)
from blursynth.shards import (
    ShardWriter,
    disk_field_name,
    field_specs,
    sha256_file,
)
from blursynth.shards.assembly import SplitAssembly
from blursynth.sources import open_items
from blursynth.workers import die_with_parent

# --- per-image sampling ---------------------------------------------------------------------


def extract_patches(
    image_u8: np.ndarray, cy: np.ndarray, cx: np.ndarray, patch_size: int
) -> np.ndarray:
    """Crop ``(len(cy), 3, P, P)`` uint8 patches centred at ``(cy, cx)`` (reflect-padded)."""
    return cut_patches(np.ascontiguousarray(image_u8.transpose(2, 0, 1)), cy, cx, patch_size)


def cut_patches(
    planar: np.ndarray,
    cy: np.ndarray,
    cx: np.ndarray,
    patch_size: int,
    out: np.ndarray | None = None,
    dest: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`extract_patches` from a planar image, uint8 ``(3, H, W)``.

    Centres at least ``P // 2`` from every edge are windows of the image itself (whole pixel
    runs copied); the others index it through the reflection (``BORDER_REFLECT_101``).
    With ``out`` (uint8 ``(M, 3, P, P)``) and ``dest`` (``len(cy)`` row indices into it), the
    patches go straight to ``out[dest]`` (a shard's buffer) and ``out`` is returned.
    """
    r = patch_size // 2
    _, h, w = planar.shape
    if out is None:
        out = np.empty((len(cy), 3, patch_size, patch_size), dtype=np.uint8)
        dest = np.arange(len(cy))
    elif not out.flags.c_contiguous:
        raise ValueError("cut_patches needs a C-contiguous out")
    inner = (cy >= r) & (cy < h - r) & (cx >= r) & (cx < w - r)
    if inner.any():
        rows = np.flatnonzero(inner)
        wy, wx, at = cy[rows] - r, cx[rows] - r, dest[rows]
        # A patch row of P pixels is one element of a P-byte void dtype, so a patch is P
        # element copies per channel (not P * P byte copies): views of the image's windows,
        # (3, H - P + 1, W - P + 1, P) rows, and of the output's rows, (M, 3, P).
        run = np.dtype((np.void, patch_size))
        planar = np.ascontiguousarray(planar)
        windows = np.ndarray(
            (3, h - 2 * r, w - 2 * r, patch_size), run, planar, 0, (h * w, w, 1, w)
        )
        runs = np.ndarray(
            (len(out), 3, patch_size), run, out, 0, (3 * patch_size**2, patch_size**2, patch_size)
        )
        for c in range(3):  # one channel at a time (2x faster than all three at once)
            runs[at, c] = windows[c, wy, wx]
    if not inner.all():
        offsets = np.arange(-r, r + 1)
        ry = _reflect(cy[~inner, None] + offsets, h)  # (n, P)
        rx = _reflect(cx[~inner, None] + offsets, w)
        out[dest[~inner]] = planar[:, ry[:, :, None], rx[:, None, :]].transpose(1, 0, 2, 3)
    return out


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into ``[0, n)`` without repeating the edge (BORDER_REFLECT_101)."""
    index = np.abs(index)
    return np.where(index >= n, 2 * (n - 1) - index, index)


# --- sampling and writing -------------------------------------------------------------------


def draw_centres(
    cells: np.ndarray, quotas: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw ``quotas[c]`` distinct centres from each cell ``c`` of one image's cell map.

    Returns row-aligned arrays in cell order: ``label``, ``category``, ``center_y``,
    ``center_x`` (the patches are cut later, :class:`PatchCutter`).
    """
    flat_cells = cells.ravel()
    picks = []
    for cell, q in enumerate(quotas):
        if q:
            where = np.flatnonzero(flat_cells == cell)
            picks.append(where[rng.choice(where.size, size=int(q), replace=False)])
    flat = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    cy, cx = np.divmod(flat, cells.shape[1])
    return {
        "label": cells[cy, cx] & np.uint8(1),  # cells 1 and 3 have a blurred centre
        "category": np.repeat(np.array([c for c, _ in CELLS], dtype=np.uint8), quotas),
        "center_y": cy.astype(np.int32),
        "center_x": cx.astype(np.int32),
    }


@dataclass(frozen=True)
class ImageTask:
    """One image's share of a split: its index, blur type code and quotas."""

    image_index: int
    blur_code: int
    quotas: np.ndarray


def draw_image(
    task: ImageTask, seed: int, split_id: int, cache: DecodedCache
) -> dict[str, np.ndarray]:
    """The scalar fields of one image's patches (a worker's task): centres, labels,
    categories, provenance, drawn from ``SeedSequence(seed, (split_id, image_index))``."""
    die_with_parent()
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(split_id, task.image_index))
    )
    rows = draw_centres(cache.cells(task.image_index), task.quotas, rng)
    n = len(rows["label"])
    rows["blur_type"] = np.full(n, task.blur_code, dtype=np.uint8)
    rows["image_index"] = np.full(n, task.image_index, dtype=np.int32)
    return rows


@dataclass(frozen=True)
class PatchCutter:
    """The :class:`~blursynth.shards.assembly.RowCutter` of a patch shard: an image's
    patches at their centres, cut from the decoded cache."""

    cache: DecodedCache
    patch_size: int
    dtypes = {"patches": np.dtype(np.uint8)}

    def __call__(self, image_index: int, rows: dict, out: dict, dest: np.ndarray) -> None:
        planar = self.cache.planar(image_index)
        cut_patches(
            planar, rows["center_y"], rows["center_x"], self.patch_size, out["patches"], dest
        )


def shuffled_positions(rows: int, seed: int, split_id: int) -> np.ndarray:
    """Final position of each row of the image-major order (a seeded permutation)."""
    dtype = np.int32 if rows < 2**31 else np.int64
    return stream(seed, SHUFFLE_STREAM, split_id).permutation(rows).astype(dtype)


def draw_split(
    plan: Plan,
    name: str,
    out: Path,
    attrs: dict,
    *,
    jobs: int = 1,
    quiet: bool = True,
    recorded: dict[str, str] | None = None,
    cache: DecodedCache,
) -> SplitShards:
    """Draw one split's patches and plan the tasks that write its shards
    (:mod:`blursynth.shards.assembly`), reusing shards already complete.

    Workers draw the centres; the shard tasks will cut the patches from the images that the
    scan kept in ``cache``. ``recorded`` maps shard names to the digests of the dataset's
    previous manifest.
    """
    p = plan.params
    sp = plan.splits[name]
    layout = ShardWriter(
        out,
        name,
        sp.rows,
        p.rows_per_shard,
        field_specs(p.patch_size, p.format),
        p.format,
        {**attrs, "images": _split_images_attr(plan, sp)},
        record_digests=True,
    )
    done = reusable_shards(layout, attrs["plan_sha256"], recorded or {})
    todo = [k for k, rec in done.items() if rec is None]
    if not todo:
        return SplitShards(done, [], None)
    split = SplitAssembly(layout)
    _draw_split(plan, name, split, jobs=jobs, quiet=quiet, cache=cache)
    return SplitShards(done, split.shard_jobs(todo, PatchCutter(cache, p.patch_size)), split)


def _draw_split(
    plan: Plan, name: str, split: SplitAssembly, *, jobs: int, quiet: bool, cache: DecodedCache
) -> None:
    """Every image's patches of the split drawn by the workers (scalars only), kept here."""
    from joblib import delayed

    p = plan.params
    sp = plan.splits[name]
    split_id = SPLIT_IDS[name]
    positions = shuffled_positions(sp.rows, p.seed, split_id)
    tasks = [
        (
            ImageTask(
                sp.images[k], BLUR_TYPES.index(plan.infos[sp.images[k]].blur_type), sp.quotas[k]
            ),
            positions[sp.offsets[k] : sp.offsets[k + 1]],
        )
        for k in range(len(sp.images))
        if sp.quotas[k].sum()
    ]
    calls = (delayed(draw_image)(t, p.seed, split_id, cache) for t, _ in tasks)
    with progressbar(length=len(tasks), label=f"draw {name}", quiet=quiet) as bar:
        for (task, pos), scalars in zip(tasks, run_tasks(calls, jobs=jobs), strict=True):
            split.take(task.image_index, pos, scalars)
            bar.update(1)


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
    warnings: list[str] = field(default_factory=list)


def build_patch_dataset(
    params: PatchParams,
    out,
    *,
    jobs: int = 1,
    quiet: bool = True,
    backend: Backend | None = None,
    force: bool = False,
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
    backend : Backend, optional
        Where the workers run (:mod:`blursynth.parallel`); default local processes.
    force : bool
        Build even over a finished dataset of another kind or other settings, or a folder
        holding other files (:func:`blursynth.build.claim_folder`).
    """
    recorded = replace(params, root=published_root(params.root, out)).to_dict()
    with dataset_build(out, "patches", backend, params.root, recorded, force) as cache:
        return _build_locked(params, Path(out), jobs=jobs, quiet=quiet, cache=cache)


def _build_locked(
    params: PatchParams, out: Path, *, jobs: int, quiet: bool, cache: DecodedCache
) -> BuildReport:
    source, items = open_items(params.source, params.root, **params.source_options())
    plan = make_plan(params, source, items, jobs=jobs, quiet=quiet, cache=cache)
    crowded = _crowding_warning(plan)
    if crowded:  # said before the gigabytes are written
        warn(crowded)
    out.mkdir(parents=True, exist_ok=True)
    published = replace(params, root=published_root(params.root, out))
    recorded = recorded_digests(out)
    start_unfinished(out)
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "blursynth_version": __version__,
        "plan_sha256": plan.fingerprint(),
        "params": published.to_dict(),
        "source": params.source,
        "seed": params.seed,
        "patch_size": params.patch_size,
        "blur_types": list(BLUR_TYPES),
        "categories": list(CATEGORIES),
        "label_meaning": "1 = centre pixel blurred",
    }
    splits = {}
    for name in SPLITS:
        remove_other_shards(out, name, plan.splits[name].rows, params.rows_per_shard)
        splits[name] = draw_split(
            plan, name, out, attrs, jobs=jobs, quiet=quiet, recorded=recorded, cache=cache
        )
    records = write_splits(splits, jobs, quiet)
    reused = sum(sh.reused for sh in splits.values())
    _write_metadata(plan, published, records, out, attrs["plan_sha256"])
    counts = plan.counts()
    warnings = _short_images_warning(plan)
    if sum(plan.splits[n].rows for n in SPLITS) and not any(c["label"] == 1 for c in counts):
        warnings.append(
            "every patch is labelled sharp: no mask has a blurred pixel (is --polarity right?)"
        )
    return BuildReport(
        out,
        {n: plan.splits[n].rows for n in SPLITS},
        counts,
        [(e["stem"], e["reason"]) for e in plan.skipped_entries()],
        reused,
        warnings,
    )


CROWDED_PATCHES = 10_000
"""Training patches per training image above which ``patches`` warns: the report's million
from CUHK's ~620 training images is ~1,600 each; a million from a dozen images is
near-duplicates (3.6 GB from cuhk-mini)."""


def _crowding_warning(plan: Plan) -> str | None:
    """A warning when the training split draws more than :data:`CROWDED_PATCHES` patches
    per image (the default ``--train-patches`` on a small source), else None."""
    train = plan.splits["train"]
    per_image = train.rows / max(1, len(train.images))
    if per_image <= CROWDED_PATCHES:
        return None
    return (
        f"{train.rows:,} training patches from {len(train.images)} training image(s) is "
        f"{per_image:,.0f} per image, mostly near-duplicates; lower --train-patches or use "
        "--per-image N"
    )


def _short_images_warning(plan: Plan) -> list[str]:
    """With ``--per-image P``: say how many images give fewer than P patches (all they
    have), instead of capping them without a word."""
    want = plan.params.per_image
    if want is None:
        return []
    short = sum(int((plan.splits[n].quotas.sum(axis=1) < want).sum()) for n in ("train", "val"))
    if not short:
        return []
    return [f"{short} image(s) hold fewer than --per-image {want} patches: they give all they have"]


def _write_metadata(
    plan: Plan, params: PatchParams, records: dict, out: Path, plan_sha: str
) -> None:
    """``eval.json``, ``manifest.json``, the card and, last, ``SHA256SUMS``; ``params`` as
    published (the source root relative to the dataset folder)."""
    entries = plan.image_entries()
    held_out = tuple(entries[i] for i in plan.eval_images)
    eval_list = EvalList(params.source, params.root, params.source_options(), held_out)
    write_json(out / EVAL_LIST, eval_list.to_dict())
    manifest = Manifest(
        kind="patches",
        plan_sha256=plan_sha,
        params=params.to_dict(),
        command=params.command(),
        fields=_fields_manifest(params),
        splits={
            name: SplitEntry(
                rows=plan.splits[name].rows,
                images=len(plan.splits[name].images),
                shards=tuple(ShardEntry(r.file, r.rows, r.sha256) for r in records[name]),
            )
            for name in SPLITS
        },
        eval_images=held_out,
        eval_list=EVAL_LIST,
        eval_sha256=sha256_file(out / EVAL_LIST),
        images=tuple(entries),
        skipped=tuple(plan.skipped_entries()),
        counts=tuple(plan.counts()),
        blursynth_version=__version__,
    )
    lists = []
    if params.format == "caffe":
        # Caffe/Mocha HDF5 layers read a list of shard paths, resolved from Caffe's working
        # directory: the names alone (run Caffe in the dataset folder), so that a published
        # dataset holds no path of the builder's machine and its lists are checksummed
        for name in SPLITS:
            write_text(out / f"{name}.txt", "".join(f"{r.file}\n" for r in records[name]))
            lists.append(f"{name}.txt")
    publish(out, manifest, records, lists)


def _fields_manifest(params: PatchParams) -> dict:
    return {
        disk_field_name(name, params.format): {"dtype": str(dtype), "shape": ["N", *shape]}
        for name, (dtype, shape) in field_specs(params.patch_size, params.format).items()
    }
