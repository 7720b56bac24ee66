"""What the dataset builders (``patches``, ``tiles``) share: the frame of a build, the scan,
and the shard-writing step.

* :func:`dataset_build`: the output folder's lock (two runs never mix), the workers' backend
  (:mod:`blursynth.parallel`) and the decode cache (:mod:`blursynth.decoded`), removed at
  the end.
* :func:`make_plan`: every image decoded once, in the workers (:func:`scan_image`: kept in
  the cache, checked, its cells counted), then the plan of :mod:`blursynth.patch_plan`.
  Both builders split images with it, so a patch and a tile dataset of one source and seed
  hold out the same images.
* :func:`write_shards`: the shard tasks of :mod:`blursynth.shards.assembly`, in the workers.
* :func:`start_unfinished`: what a folder loses when a build starts over it.
* :func:`write_splits` and :func:`publish`: the shard tasks of every split in one run,
  then the manifest, the card and the checksums, last.
* :func:`reusable_shards`: the shards of an interrupted or earlier build of the same plan,
  kept when their bytes still hash to the digest recorded when they were written.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blursynth.decoded import DecodedCache, decoded_cache, remove_cache
from blursynth.errors import BlursynthError
from blursynth.imageio import write_json, write_text
from blursynth.parallel import Backend, run_tasks, use_backend
from blursynth.patch_plan import ImageInfo, Plan, plan_splits
from blursynth.progress import progressbar
from blursynth.schema import (
    CARD,
    CHECKSUMS,
    EVAL_LIST,
    MANIFEST,
    Manifest,
    PatchParams,
    resolve_root,
)
from blursynth.shards import ShardRecord, shard_attrs, shard_name
from blursynth.shards.assembly import SplitAssembly, assemble_shard, release_buffers
from blursynth.shards.format import attr_value, sha256_file
from blursynth.shards.writer import recorded_digest, sidecar_path
from blursynth.workers import die_with_parent

NO_CACHE = DecodedCache(None)


def scan_image(
    source, item, index: int, patch_size: int, cache: DecodedCache = NO_CACHE
) -> ImageInfo | tuple[int, str]:
    """Load and check one item; an :class:`ImageInfo`, or ``(index, reason)`` to skip it.

    What it decoded stays in ``cache`` for the sampling pass.
    """
    die_with_parent()
    try:
        cells = cache.store(source, item, index, patch_size)
    except BlursynthError as exc:
        return index, str(exc)
    h, w = cells.shape
    if h < patch_size or w < patch_size:
        return index, (
            f"{item.image_path}: image is {w}x{h}, smaller than the {patch_size}x{patch_size} patch"
        )
    # four uint8 comparisons: 10x faster than bincount, which widens the map to int64
    available = [np.count_nonzero(cells == c) for c in range(4)]
    return ImageInfo(index, item.stem, item.blur_type, h, w, tuple(int(a) for a in available))


def make_plan(
    params: PatchParams,
    source,
    items: list,
    *,
    jobs: int = 1,
    quiet: bool = True,
    cache: DecodedCache = NO_CACHE,
) -> Plan:
    """Scan every image (in parallel), then plan splits and quotas (:mod:`patch_plan`)."""
    from joblib import delayed

    if not items:
        raise BlursynthError("no images found", params.root)
    with progressbar(length=len(items), label="scan images", quiet=quiet) as bar:
        results = []
        tasks = (
            delayed(scan_image)(source, it, k, params.patch_size, cache)
            for k, it in enumerate(items)
        )
        for res in run_tasks(tasks, jobs=jobs):
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


def write_shards(shard_jobs: list, jobs: int, quiet: bool) -> list[ShardRecord]:
    """Assemble and write the shards in the workers (:func:`assemble_shard`), in order.

    A task that fails leaves its temporary shard; the builders remove those on a rerun.
    """
    from joblib import delayed

    records = []
    with progressbar(length=len(shard_jobs), label="write shards", quiet=quiet) as bar:
        calls = (delayed(assemble_shard)(j) for j in shard_jobs)
        try:
            for rec in run_tasks(calls, jobs=jobs, batch_size=1):
                records.append(rec)
                bar.update(1)
        finally:
            release_buffers()  # those of this process, when it ran the shards itself
    return records


@contextmanager
def dataset_build(
    out,
    kind: str,
    backend: Backend | None,
    root,
    params: dict | None = None,
    force=False,
    *,
    classes: bool = False,
):
    """The frame of a dataset build (``patches``, ``tiles``): the output folder's claim
    (:func:`claim_folder`, with the ``params`` the manifest will record), its lock, the
    workers' backend, and the decode cache, which it yields and removes at the end (with
    ``classes``, it keeps the per-pixel blur types of mixed synthetic images)."""
    from blursynth.locking import folder_lock

    if params is not None and not force:
        claim_folder(out, kind, params)
    with folder_lock(out, kind), use_backend(backend, out, [root]):
        cache = decoded_cache(out, classes=classes)
        try:
            yield cache
        finally:
            remove_cache(cache)


OUR_NAMES = re.compile(
    r"^((train|val)-\d{5}-of-\d{5}\.h5.*|\.decoded|\.buckets-.*|eval\.json.*|"
    r"\.blursynth\.lock|.*\.tmp-\d+)$"
)
"""What an unfinished build leaves in its folder (a finished one also has the manifest)."""


def claim_folder(out, kind: str, params: dict) -> None:
    """Refuse to build over what is not this build's to replace (``--force`` skips this).

    A build may finish or redo a dataset of its own kind and settings; it refuses a
    finished dataset of another kind, or built with other settings (e.g. ``--seed``), and a
    folder holding files no build writes (a user's ``README.md``, say).

    Raises
    ------
    BlursynthError
        Naming the folder and what it holds.
    """
    import json

    out = Path(out)
    if not out.is_dir():
        return
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            recorded = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return  # a damaged manifest: the rebuild replaces it
        old_kind, old = recorded.get("kind", "patches"), recorded.get("params", {})
        if old_kind != kind:
            raise BlursynthError(
                f"holds a finished {old_kind} dataset; choose another --out, or pass --force "
                f"to replace it with {kind}",
                out,
            )
        diff = sorted(k for k in set(old) & set(params) if old[k] != params[k])
        if diff:
            raise BlursynthError(
                f"holds a {kind} dataset built with other settings ({', '.join(diff)}); choose "
                "another --out, or pass --force to replace it",
                out,
            )
        return
    foreign = sorted(p.name for p in out.iterdir() if not OUR_NAMES.match(p.name))
    if foreign:
        raise BlursynthError(
            f"holds files that no build wrote ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); choose an empty folder, or pass --force",
            out,
        )


def start_unfinished(out: Path) -> None:
    """Mark the dataset folder ``out`` unfinished (its checksums, manifest and card go; they
    are written last) and remove what a killed run left: temporary shards
    (``*.h5.tmp-<pid>``) and the bucket folders of earlier versions."""
    for stale in (CHECKSUMS, MANIFEST, CARD):
        (out / stale).unlink(missing_ok=True)
    for tmp in out.glob("*.h5.tmp-*"):
        tmp.unlink()
    for buckets in out.glob(".buckets-*"):
        shutil.rmtree(buckets)


# --- reusing the shards of an interrupted or earlier build -----------------------------------


def recorded_digests(out: Path) -> dict[str, str]:
    """Shard digests of the folder's finished manifest, if it has a readable one."""
    try:
        manifest, _ = Manifest.read(out / MANIFEST)
    except BlursynthError:
        return {}
    return {s.file: s.sha256 for entry in manifest.splits.values() for s in entry.shards}


def remove_other_shards(out: Path, split: str, rows: int, rows_per_shard: int) -> None:
    """Remove the split's shards of a plan with another shard count (they cannot be reused)."""
    count = max(1, -(-rows // rows_per_shard))
    planned = {shard_name(split, k, count) for k in range(count)}
    for old in out.glob(f"{split}-*-of-*.h5"):
        if old.name not in planned:
            old.unlink()


def reusable_shards(layout, plan_sha: str, recorded: dict[str, str]) -> dict:
    """Each shard of a split's ``layout`` (a :class:`~blursynth.shards.ShardWriter`): the
    record of a complete one from an earlier build of the same plan, else None (to write)."""
    params = attr_value(layout.attrs["params"]) if "params" in layout.attrs else None
    return {
        k: complete_shard(
            layout.shard_path(k), layout.split, plan_sha, layout.shard_rows(k), recorded, params
        )
        for k in range(layout.num_shards)
    }


def complete_shard(
    path: Path, split: str, plan_sha: str, rows: int, recorded: dict[str, str], params=None
) -> ShardRecord | None:
    """The record of a finished shard from an earlier run of the same plan, else None.

    Reused only when its bytes still hash to the digest recorded when it was written
    (:func:`blursynth.shards.writer.recorded_digest`), and was written with the same
    parameters (``params``: the JSON of its ``params`` attribute, when given): a damaged
    shard, or one of other settings, is rebuilt.
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
        or (params is not None and attrs.get("params") != params)
    ):
        return None
    digest = sha256_file(path)
    if digest != recorded_digest(path, recorded):
        return None
    if not sidecar_path(path).exists():  # keep the record should this run be interrupted too
        write_text(sidecar_path(path), digest + "\n")
    return ShardRecord(path.name, rows, digest)


@dataclass
class SplitShards:
    """One split, drawn: its shards already complete (reused) and the tasks for the others."""

    done: dict[int, ShardRecord | None]
    jobs: list
    assembly: SplitAssembly | None

    @property
    def reused(self) -> int:
        return sum(rec is not None for rec in self.done.values())

    def records(self, written: Iterator[ShardRecord]) -> list[ShardRecord]:
        """The split's shard records in order, taking the written ones from ``written``."""
        return [next(written) if rec is None else rec for rec in self.done.values()]


def write_splits(splits: dict, jobs: int, quiet: bool) -> dict[str, list[ShardRecord]]:
    """Every split's shard tasks in one parallel run (no worker idles between splits): each
    split's records in order, reused shards included. An interrupted write leaves no
    temporary shard behind."""
    try:
        written = iter(write_shards([j for sh in splits.values() for j in sh.jobs], jobs, quiet))
        return {name: sh.records(written) for name, sh in splits.items()}
    finally:
        for sh in splits.values():
            if sh.assembly is not None:
                sh.assembly.remove_temporaries()


def publish(out: Path, manifest: Manifest, records: dict, extra_files=()) -> None:
    """Finish a dataset folder, ``eval.json`` written: ``manifest.json``, the dataset card
    (its kind's, naming the source photographs of a ``generate`` run it was built from) and,
    last, ``SHA256SUMS``; the shards' digest sidecars go (the manifest records them)."""
    from blursynth.dataset_card import dataset_card
    from blursynth.shards import write_checksums
    from blursynth.shards.writer import remove_sidecars
    from blursynth.sources.synth import generate_sources

    write_json(out / MANIFEST, manifest.to_dict())
    synth = manifest.params.get("source") == "synth"
    root = resolve_root(manifest.params["root"], out)
    write_text(out / CARD, dataset_card(manifest, generate_sources(root) if synth else None))
    known = {r.file: r.sha256 for split in records.values() for r in split}
    write_checksums(out, [*known, EVAL_LIST, MANIFEST, CARD, *extra_files], known)
    remove_sidecars(out)
