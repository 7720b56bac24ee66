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

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from blursynth import __version__
from blursynth.errors import BlursynthError
from blursynth.imageio import to_u8, write_json, write_text
from blursynth.patch_plan import (
    CELLS,
    SHUFFLE_STREAM,
    SPLIT_IDS,
    ImageInfo,
    Plan,
    SplitPlan,
    cell_map,
    plan_splits,
    stream,
)
from blursynth.progress import progressbar
from blursynth.schema import (
    BLUR_TYPES,
    CARD,
    CATEGORIES,
    CHECKSUMS,
    EVAL_LIST,
    MANIFEST,
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
    ShardRecord,
    ShardWriter,
    disk_field_name,
    field_specs,
    sha256_file,
    shard_attrs,
    shard_name,
    write_checksums,
)
from blursynth.shards.writer import recorded_digest, remove_sidecars, sidecar_path
from blursynth.sources import open_items
from blursynth.workers import die_with_parent

# --- per-image sampling ---------------------------------------------------------------------


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


def scan_image(source, item, index: int, patch_size: int) -> ImageInfo | tuple[int, str]:
    """Load and check one item; an :class:`ImageInfo`, or ``(index, reason)`` to skip it."""
    die_with_parent()
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


def make_plan(
    params: PatchParams, source, items: list, *, jobs: int = 1, quiet: bool = True
) -> Plan:
    """Scan every image (in parallel), then plan splits and quotas (:mod:`patch_plan`)."""
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
    plan = plan_splits(params, items, infos, skipped)
    plan.unmatched = [
        (p.stem, f"{p}: no mask of the same name") for p in getattr(source, "missing_masks", [])
    ]
    return plan


# --- sampling and writing -------------------------------------------------------------------


def sample_image(
    source, item, quotas: np.ndarray, patch_size: int, seed: int, split_id: int, image_index: int
) -> dict[str, np.ndarray]:
    """Draw one image's patches: ``quotas[c]`` distinct centres from each cell ``c``.

    Returns row-aligned arrays in cell order (``patches`` uint8 (n, 3, P, P), ``label``,
    ``category``, ``center_y``, ``center_x``).
    """
    die_with_parent()
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
    return stream(seed, SHUFFLE_STREAM, split_id).permutation(rows).astype(dtype)


def _complete_shard(
    path: Path, split: str, plan_sha: str, rows: int, recorded: dict[str, str]
) -> ShardRecord | None:
    """The record of a finished shard from an earlier run of the same plan, else None.

    Reused only when its bytes still hash to the digest recorded when it was written
    (:func:`blursynth.shards.writer.recorded_digest`): a damaged shard is rebuilt.
    """
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
    digest = sha256_file(path)
    if digest != recorded_digest(path, recorded):
        return None
    if not sidecar_path(path).exists():  # keep the record should this run be interrupted too
        write_text(sidecar_path(path), digest + "\n")
    return ShardRecord(path.name, rows, digest)


def write_split(
    plan: Plan,
    name: str,
    source,
    out: Path,
    attrs: dict,
    *,
    jobs: int = 1,
    quiet: bool = True,
    recorded: dict[str, str] | None = None,
) -> tuple[list[ShardRecord], int]:
    """Sample one split and write its shards, reusing shards already complete.

    ``recorded`` maps shard names to the digests of the dataset's previous manifest.
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
        record_digests=True,
    )
    done = {
        k: _complete_shard(
            writer.shard_path(k), name, attrs["plan_sha256"], writer.shard_rows(k), recorded or {}
        )
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
    return writer.records, sum(rec is not None for rec in done.values())


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
    warnings: list[str] = field(default_factory=list)


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
    from blursynth.locking import folder_lock

    with folder_lock(out, "patches"):
        return _build_locked(params, Path(out), jobs=jobs, quiet=quiet)


def _build_locked(params: PatchParams, out: Path, *, jobs: int, quiet: bool) -> BuildReport:
    source, items = open_items(params.source, params.root, **params.source_options())
    plan = make_plan(params, source, items, jobs=jobs, quiet=quiet)
    out.mkdir(parents=True, exist_ok=True)
    published = replace(params, root=published_root(params.root, out))
    recorded = _recorded_digests(out)
    for stale in (CHECKSUMS, MANIFEST, CARD):  # the folder is unfinished from now on
        (out / stale).unlink(missing_ok=True)
    _remove_stale_temporaries(out)
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
    records = {}
    reused = 0
    for name in SPLITS:
        count = max(1, -(-plan.splits[name].rows // params.rows_per_shard))
        planned = {shard_name(name, k, count) for k in range(count)}
        for old in out.glob(f"{name}-*-of-*.h5"):  # shards of a plan with another shard count
            if old.name not in planned:
                old.unlink()
        records[name], n_reused = write_split(
            plan, name, source, out, attrs, jobs=jobs, quiet=quiet, recorded=recorded
        )
        reused += n_reused
    _write_metadata(plan, published, records, out, attrs["plan_sha256"])
    counts = plan.counts()
    warnings = []
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


def _write_metadata(
    plan: Plan, params: PatchParams, records: dict, out: Path, plan_sha: str
) -> None:
    """``eval.json``, ``manifest.json``, the card and, last, ``SHA256SUMS``; ``params`` as
    published (the source root relative to the dataset folder)."""
    from blursynth.dataset_card import dataset_card

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
    if params.format == "caffe":
        # Caffe/Mocha HDF5 layers read a list of shard paths; absolute, since Caffe resolves
        # them from its working directory (so these lists are not checksummed).
        for name in SPLITS:
            write_text(
                out / f"{name}.txt", "".join(f"{(out / r.file).resolve()}\n" for r in records[name])
            )
    write_json(out / MANIFEST, manifest.to_dict())
    write_text(out / CARD, dataset_card(manifest))
    known = {r.file: r.sha256 for name in SPLITS for r in records[name]}
    write_checksums(out, [*known, EVAL_LIST, MANIFEST, CARD], known)
    remove_sidecars(out)  # the manifest records the digests from now on


def _fields_manifest(params: PatchParams) -> dict:
    return {
        disk_field_name(name, params.format): {"dtype": str(dtype), "shape": ["N", *shape]}
        for name, (dtype, shape) in field_specs(params.patch_size, params.format).items()
    }


def _recorded_digests(out: Path) -> dict[str, str]:
    """Shard digests of the folder's finished manifest, if it has a readable one."""
    try:
        manifest, _ = Manifest.read(out / MANIFEST)
    except BlursynthError:
        return {}
    return {s.file: s.sha256 for entry in manifest.splits.values() for s in entry.shards}


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary shards of a killed run (``*.h5.tmp-<pid>``) and bucket folders."""
    for tmp in out.glob("*.h5.tmp-*"):
        tmp.unlink()
    for buckets in out.glob(".buckets-*"):
        shutil.rmtree(buckets)
