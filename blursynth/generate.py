"""``blursynth generate``: sample record -> load -> render -> write, in parallel, resumable.

Output layout (CUHK-like, read back by :class:`blursynth.sources.SynthSource`)::

    DIR/image/motion0001.png    8-bit RGB rendering
    DIR/gt/motion0001.png       binary ground truth, 255 = blurred, 0 = sharp
    DIR/soft/motion0001.png     soft blur map (motion k*m, defocus and pan 1 - k2*m), 8-bit
    DIR/records/motion0001.json the sample record (written last: its presence marks the
                                sample complete)
    DIR/records.jsonl           every record, one JSON line each, sorted by name
    DIR/run.json                seed, models, split, parameters, catalogue digest (for --resume)
    DIR/report.json             counts, skipped VOC items and failed samples

The binary map is each blur model's truth (:mod:`blursynth.blurmodels`): motion
``k*m >= 0.5``, defocus and pan ``m < 0.5`` (the sharp object is the mask itself); a mixed
image's is ``classes != 0``, its classes in ``DIR/classes/``. Image names say the model
(``motion####``, ``defocus####``, ``mixed####``, ``pan####``); a pan image's blurred
pixels are all motion blur. Every file is written atomically and
depends only on its record, so the output is byte-identical for a seed whatever ``--jobs``,
and ``--resume`` after a kill gives the same files as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

import cv2
from joblib import delayed

from blursynth import blurmodels
from blursynth.errors import BlursynthError
from blursynth.imageio import PNG_FILTERS, PNG_STRATEGIES, atomic_path, write_json, write_png
from blursynth.locking import LOCK_NAME
from blursynth.parallel import Backend, run_tasks, use_backend
from blursynth.progress import progressbar
from blursynth.rerender import record_kernels, rerender  # noqa: F401 (the API)
from blursynth.sampling import (
    CAMERA_DEFAULTS,
    SAMPLE_NAME,
    SampleParams,
    SampleRecord,
    names_in_order,
    sample_name,
    sample_record,
)
from blursynth.scenes import (  # noqa: F401 (scan, scene_sources, default_voc_root: the API)
    SOURCES_FILE,
    default_voc_root,
    scan,
    scene_sources,
    sharp_backgrounds,
    source_entries,
    voc_root,
)
from blursynth.schema import KNOWN_BLUR_TYPES
from blursynth.sources.objects import SceneSources
from blursynth.sources.voc import MIN_CLASS_FRACTION, VOCItem
from blursynth.workers import die_with_parent

PNG_LEVEL = 1
"""zlib level of the PNGs ``generate`` writes: level 6 took ~70 % of each image's time (163
against 23 ms for a 500x375 RGB image) for files 15 % smaller; the pixels are the same."""
LEGACY_PNG_LEVEL = 6
"""The level of runs made before ``--png-level`` (their run.json records none)."""
PNG_STRATEGY = "rle"
PNG_FILTER = "auto"
"""zlib strategy and row filter of the PNGs ``generate`` writes
(:data:`~blursynth.imageio.PNG_STRATEGIES`, :data:`~blursynth.imageio.PNG_FILTERS`): at
level 1, ``rle`` with one filter per image (libpng) encodes a rendered image's three PNGs in
about half the time of zlib's default strategy with Pillow's adaptive filter, in files as
small (docs/benchmarks.md, "PNG encoding"); the pixels are the same."""
LEGACY_PNG_STRATEGY = "default"
LEGACY_PNG_FILTER = "adaptive"
"""The encoding of runs made before ``--png-strategy`` and ``--png-filter`` (their run.json
records neither)."""

PLAN_CHUNK = 1024
"""Samples planned, rendered and written at a time: memory does not grow with ``--n``."""
MAX_REDRAWS = 4
"""Times a sample whose sources fail to load is drawn again before it counts as failed."""

OUTPUT_DIRS = ("image", "gt", "soft")


def output_dirs(name: str) -> tuple[str, ...]:
    """The folders an image of this name is written to: every image's, and its model's own
    (``mixed####`` adds ``classes/``)."""
    return (*OUTPUT_DIRS, *blurmodels.get(SAMPLE_NAME.fullmatch(name)[1]).outputs)


def _every_output_dir() -> tuple[str, ...]:
    extra = sorted({d for m in blurmodels.names() for d in blurmodels.get(m).outputs})
    return (*OUTPUT_DIRS, *extra)


def models_of(model: str) -> tuple[str, ...]:
    """``both``: the report's two models; ``all``: every registered model; else the one
    named."""
    return {"both": KNOWN_BLUR_TYPES, "all": blurmodels.names()}.get(model, (model,))


RECORD_DIR = "records"


@dataclass
class Report:
    """What a run did; written to ``DIR/report.json``."""

    requested: int = 0
    written: int = 0
    already_done: int = 0
    skipped_items: list[dict] = field(default_factory=list)  # VOC items unusable at all
    background_only: list[str] = field(default_factory=list)  # no class >= threshold
    failed: list[dict] = field(default_factory=list)  # samples whose files failed to decode
    redrawn: list[dict] = field(default_factory=list)  # draws replaced: a source failed
    sharp_backgrounds: int | None = None  # --min-background-sharpness: photographs kept

    @property
    def complete(self) -> int:
        return self.written + self.already_done

    def lines(self, limit: int = 10) -> list[str]:
        """Human-readable problems, at most ``limit`` of each kind."""
        out = []
        kinds = (
            ("skipped", self.skipped_items),
            ("redrawn", self.redrawn),
            ("failed", self.failed),
        )
        for kind, rows in kinds:
            for row in rows[:limit]:
                out.append(f"{kind}: {row['file']}: {row['reason']}")
            if len(rows) > limit:
                out.append(f"... and {len(rows) - limit} more {kind} (see report.json)")
        return out


def _background_pool(voc, items, params: SampleParams, report: Report, *, jobs, quiet):
    """The items that may serve as backgrounds under ``--min-background-sharpness`` (None:
    all), their count in ``report``; none left is an error."""
    if params.min_background_sharpness <= 0:
        return None
    pool = sharp_backgrounds(voc, items, params.min_background_sharpness, jobs=jobs, quiet=quiet)
    report.sharp_backgrounds = len(pool)
    if not pool:
        raise BlursynthError(
            f"no photograph has a background of sharpness >= "
            f"{params.min_background_sharpness} (lower --min-background-sharpness)",
            voc.roots[0],
        )
    if params.background == "own" and not any(items[k].classes for k in pool):
        raise BlursynthError(
            f"--background own: no photograph with a usable object has a background of "
            f"sharpness >= {params.min_background_sharpness} (lower "
            "--min-background-sharpness)",
            voc.roots[0],
        )
    return pool


def generate(
    out,
    *,
    n: int,
    voc=None,
    model: str = "both",
    seed: int = 0,
    split: str = "train",
    jobs: int = 1,
    resume: bool = False,
    quiet: bool = False,
    params: SampleParams | None = None,
    backend: Backend | None = None,
    objects: Sequence = (),
    object_threshold: int = 128,
    object_polarity: str = "object-white",
    png_level: int | None = None,
    png_strategy: str | None = None,
    png_filter: str | None = None,
) -> Report:
    """Generate ``n`` images per model into ``out`` (empty or absent unless ``resume``).

    Parameters
    ----------
    n : images per model.
    voc : ``VOCdevkit``, ``VOC2012`` or a folder holding ``VOCdevkit``; default the embedded
        sample (:func:`default_voc_root`).
    model : a blur model (:mod:`blursynth.blurmodels`), ``both`` (the report's two) or ``all``.
    seed, split : the root seed; the VOC split (``train``, ``val`` or ``trainval``).
    jobs, backend : worker processes, and where they run (:mod:`blursynth.parallel`; default
        local processes); the output depends on neither.
    resume : complete an interrupted run in ``out`` (the same settings: its ``run.json``).
    quiet : no progress bar.
    params : parameter ranges; default :class:`~blursynth.sampling.SampleParams`.
    objects, object_threshold, object_polarity : object-mask folders (``image/`` +
        ``mask/``, :mod:`blursynth.sources.objects`) to draw scenes from besides ``voc``
        (without ``voc``, only these), and how their masks read (grey levels ``>=
        threshold`` are white; white is the object, ``object-white``, or the background).
    png_level, png_strategy, png_filter : zlib level 0-9, zlib strategy and PNG row filter
        (:data:`~blursynth.imageio.PNG_STRATEGIES`, :data:`~blursynth.imageio.PNG_FILTERS`;
        the pixels are the same with any); default :data:`PNG_LEVEL`, :data:`PNG_STRATEGY`
        and :data:`PNG_FILTER`, or on ``resume`` the interrupted run's (for a run made before
        the options: 6, ``default``, ``adaptive``): one folder holds one encoding.

    Returns a :class:`Report`. Raises :class:`BlursynthError` for a bad VOC root or split, a
    non-empty ``out`` without ``resume``, a resume with other settings, or a run that
    produced nothing.
    """
    from blursynth.locking import folder_lock

    _check_numbers(n, model, seed, jobs)  # before the lock creates the folder
    png = _png_options(png_level, png_strategy, png_filter)
    params = SampleParams() if params is None else params
    job = _Job(n, model, seed, split, jobs, resume, quiet, params, png)
    sources = _Sources(voc, tuple(objects), object_threshold, object_polarity)
    roots = [r for r in (voc_root(voc, objects),) if r is not None] + [*objects]
    with folder_lock(out, "generate"), use_backend(backend, out, roots):
        return _generate(Path(out), job, sources)


def _png_options(level: int | None, strategy: str | None, filter_: str | None) -> dict:
    """The PNG options as asked (None: not asked), checked."""
    if level is not None and not 0 <= level <= 9:
        raise BlursynthError(f"--png-level must be 0..9, got {level}")
    for option, value, known in (
        ("--png-strategy", strategy, PNG_STRATEGIES),
        ("--png-filter", filter_, PNG_FILTERS),
    ):
        if value is not None and value not in known:
            raise BlursynthError(f"{option} must be one of {', '.join(known)}, got {value!r}")
    return {"png_level": level, "png_strategy": strategy, "png_filter": filter_}


@dataclass(frozen=True)
class _Job:
    """What a run makes (:func:`generate`'s arguments)."""

    n: int
    model: str
    seed: int
    split: str
    jobs: int
    resume: bool
    quiet: bool
    params: SampleParams
    png: dict
    """``png_level``, ``png_strategy``, ``png_filter`` as asked (None: the default, or the
    run's own)."""


@dataclass(frozen=True)
class _Sources:
    """Where its scenes come from (:func:`generate`'s arguments)."""

    voc: object
    objects: tuple
    threshold: int
    polarity: str


def _generate(out: Path, job: _Job, src: _Sources) -> Report:
    """The run itself, under the folder's lock (see :func:`generate`)."""
    n, params, jobs, quiet = job.n, job.params, job.jobs, job.quiet
    models = _check_arguments(out, n, job.model, job.seed, jobs, job.resume)
    png = _png_encoding(out, job)

    dataset = scene_sources(src.voc, job.split, src.objects, src.threshold, src.polarity)
    items, bad = scan(dataset, jobs=jobs, quiet=quiet)
    report = Report(
        requested=n * len(models),
        skipped_items=bad,
        background_only=[it.id for it in items if not it.classes],
    )
    if not any(it.classes for it in items):
        raise BlursynthError(
            f"no usable foreground: no class or object covers >= "
            f"{MIN_CLASS_FRACTION:.0%} of any readable image (VOC split {job.split!r})",
            dataset.roots[0],
        )

    run = _run_dict(job, models, items, png, src)
    # measured before the folder is claimed: a refusal leaves it as it was
    backgrounds = _background_pool(dataset, items, params, report, jobs=jobs, quiet=quiet)
    _claim_run_folder(out, run, job.resume)
    write_json(out / SOURCES_FILE, source_entries(src.voc, job.split, src.objects))
    _check_beyond(out, models, n)

    draw = partial(
        sample_record,
        items,
        seed=job.seed,
        params=params,
        class_name=dataset.class_name,
        backgrounds=backgrounds,
    )
    renderer = partial(_render_and_write, voc=dataset, out=out, single_thread=jobs > 1, png=png)
    _render_all(draw, renderer, models, n, out, report, jobs=jobs, quiet=quiet)

    _write_records(out, models, n)
    write_json(out / "report.json", asdict(report))
    if report.complete == 0:
        first = (report.failed or report.skipped_items or [None])[0]
        why = f" (first problem: {first['file']}: {first['reason']})" if first else ""
        raise BlursynthError(f"nothing could be generated{why}; see report.json", out)
    return report


def _run_dict(job: _Job, models, items, png: dict, src: _Sources) -> dict:
    """What ``run.json`` records: what a ``--resume`` must match."""
    run = {
        "seed": int(job.seed),
        "models": list(models),
        "split": job.split,
        "params": job.params.run_dict(),
        "min_class_fraction": MIN_CLASS_FRACTION,
        "catalog": _digest(items),
        **png,
    }
    if src.objects:  # a VOC-only run's run.json is what it always was
        run["objects"] = [str(Path(d)) for d in src.objects]
        run["object_mask"] = {"threshold": src.threshold, "polarity": src.polarity}
    return run


def _check_beyond(out: Path, models: tuple, n: int) -> None:
    """Refuse a resume with a smaller ``--n``: it would leave images that records.jsonl no
    longer lists."""
    beyond, last = 0, None
    for path in (out / RECORD_DIR).glob("*.json"):
        match = SAMPLE_NAME.fullmatch(path.stem)
        if match is None or match[1] not in models or int(match[2]) > n:
            beyond, last = beyond + 1, path.stem
    if beyond:
        raise BlursynthError(
            f"cannot resume with --n {n}: the run already holds {beyond} image(s) beyond "
            f"it (e.g. {last}); use at least the interrupted run's --n",
            out,
        )


def _check_numbers(n: int, model: str, seed: int, jobs: int) -> None:
    if n < 1:
        raise BlursynthError(f"--n must be >= 1, got {n}")
    if jobs < 1:
        raise BlursynthError(f"--jobs must be >= 1, got {jobs}")
    if seed < 0:  # SeedSequence takes no negative entropy
        raise BlursynthError(f"--seed must be >= 0, got {seed}")
    models = models_of(model)
    if not set(models) <= set(blurmodels.names()):
        choices = (*blurmodels.names(), "both", "all")
        raise BlursynthError(f"model must be one of {choices}, got {model!r}")


def _check_arguments(out, n: int, model: str, seed: int, jobs: int, resume: bool) -> tuple:
    """The blur models to render; errors for bad counts, seeds and output folders."""
    _check_numbers(n, model, seed, jobs)
    models = models_of(model)
    out = Path(out)
    if resume and model == "all":  # every model the interrupted run rendered (fewer models
        models = _previous_models(out) or models  # were registered when it started)
    if out.exists() and not out.is_dir():
        raise BlursynthError("output path exists and is not a folder", out)
    if not resume and out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise BlursynthError(
            "output folder is not empty; add --resume to complete an interrupted run, or "
            "choose a new folder",
            out,
        )
    return models


def _previous_run(out: Path) -> dict:
    """The ``run.json`` of the run in ``out`` ({} when there is none or it cannot be read)."""
    try:
        run = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def _previous_models(out: Path) -> tuple[str, ...] | None:
    """The models of the run in ``out`` when all of them are registered, else None."""
    models = _previous_run(out).get("models")
    if not isinstance(models, list) or not models:
        return None
    return tuple(models) if set(map(str, models)) <= set(blurmodels.names()) else None


def _render_all(draw, renderer, models, n: int, out: Path, report: Report, *, jobs, quiet):
    """Plan, render and write every sample not yet complete, :data:`PLAN_CHUNK` at a time
    (memory flat in ``n``); count successes and failures.

    A sample whose sources fail to load is drawn again from another stream
    (``spawn_key + (attempt,)``), up to :data:`MAX_REDRAWS` times, so one damaged photograph
    costs a redraw, not a sample on every ``--resume``; the draws do not depend on ``jobs``.
    """
    planned = ((m, i) for m in models for i in range(n))
    with progressbar(length=n * len(models), label="generate", quiet=quiet) as bar:
        for chunk in iter(lambda: list(islice(planned, PLAN_CHUNK)), []):
            todo = [draw(m, i) for m, i in chunk if not _is_complete(out, sample_name(m, i))]
            report.already_done += len(chunk) - len(todo)
            bar.update(len(chunk) - len(todo))
            for attempt in range(1, MAX_REDRAWS + 2):
                if not todo:  # all written (or the chunk was done before)
                    break
                failures = _render_chunk(todo, renderer, report, bar, jobs)
                if attempt > MAX_REDRAWS:
                    report.failed += [{"name": r.name, **why} for r, why in failures]
                    bar.update(len(failures))
                    break
                report.redrawn += [{"name": r.name, **why} for r, why in failures]
                todo = [draw(r.model, r.index, attempt=attempt) for r, _ in failures]
    for rows in (report.failed, report.redrawn):
        rows.sort(key=lambda row: row["name"])


def _render_chunk(records: list, renderer, report: Report, bar, jobs: int) -> list[tuple]:
    """Render ``records`` in parallel: ``(record, failure)`` of those that failed."""
    by_name = {r.name: r for r in records}
    failures = []
    tasks = (delayed(renderer)(r) for r in records)
    for name, failure in run_tasks(tasks, jobs=jobs, ordered=False, batch_size=1):
        if failure is None:
            report.written += 1
            bar.update(1)
        else:
            failures.append((by_name[name], failure))
    failures.sort(key=lambda f: f[0].name)  # the next attempt's order: not the workers'
    return failures


def _render_and_write(
    record: SampleRecord, *, voc: SceneSources, out: Path, single_thread: bool, png: dict
):
    die_with_parent()
    if single_thread:
        cv2.setNumThreads(1)
    try:
        arrays = rerender(record, voc)
    except BlursynthError as exc:
        return record.name, {"file": str(exc.path), "reason": exc.reason}
    for sub in output_dirs(record.name):
        path = out / sub / f"{record.name}.png"
        write_png(
            path,
            arrays[sub],
            level=png["png_level"],
            strategy=png["png_strategy"],
            filter=png["png_filter"],
        )
    write_json(out / RECORD_DIR / f"{record.name}.json", record.to_dict())  # last: marks done
    return record.name, None


PNG_DEFAULTS = {"png_level": PNG_LEVEL, "png_strategy": PNG_STRATEGY, "png_filter": PNG_FILTER}
LEGACY_PNG = {
    "png_level": LEGACY_PNG_LEVEL,
    "png_strategy": LEGACY_PNG_STRATEGY,
    "png_filter": LEGACY_PNG_FILTER,
}
"""What a run.json without the keys was written with."""


def _png_encoding(out: Path, job: _Job) -> dict:
    """``png_level``, ``png_strategy`` and ``png_filter`` of this run: as asked; else, on a
    resume, the interrupted run's (:data:`LEGACY_PNG` for what it records none of); else the
    defaults. A resume asking another encoding than its run's is refused later, with the
    other differences (:func:`_claim_run_folder`)."""
    previous = _previous_run(out) if job.resume else None
    fallback = {**LEGACY_PNG, **previous} if previous else PNG_DEFAULTS
    png = {}
    for key, asked in job.png.items():
        png[key] = asked if asked is not None else fallback[key]
    known = png["png_strategy"] in PNG_STRATEGIES and png["png_filter"] in PNG_FILTERS
    if not (isinstance(png["png_level"], int) and known):
        return PNG_DEFAULTS  # an unreadable record: the comparison with run.json refuses it
    return png


def _is_complete(out: Path, name: str) -> bool:
    paths = [out / sub / f"{name}.png" for sub in output_dirs(name)]
    return (out / RECORD_DIR / f"{name}.json").is_file() and all(p.is_file() for p in paths)


def _differences(previous: dict, run: dict) -> list[str]:
    """Keys of ``run`` whose values differ from ``previous``; inside a nested dict (the
    sampling ``params``), its differing keys, as ``params.noise_a``."""
    diff = []
    for key in sorted(run):
        old, new = previous.get(key), run[key]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            subkeys = sorted(set(old) | set(new))
            diff += [f"{key}.{sub}" for sub in subkeys if old.get(sub) != new.get(sub)]
        else:
            diff.append(key)
    return diff


def _claim_run_folder(out: Path, run: dict, resume: bool) -> None:
    """Check a resume matches the interrupted run, drop its temporaries, write ``run.json``."""
    run_path = out / "run.json"
    if resume and run_path.is_file():
        # a camera option missing from either side is at its default: a default run records
        # none, and a run from before an option existed does not name it
        defaults = json.loads(json.dumps(CAMERA_DEFAULTS))
        previous, current = json.loads(run_path.read_text()), json.loads(json.dumps(run))
        previous = {**LEGACY_PNG, **previous}  # a run from before the options
        for r in (previous, current):
            if isinstance(r.get("params"), dict):
                r["params"] = {**defaults, **r["params"]}
        diff = _differences(previous, current)
        if diff:
            raise BlursynthError(
                f"cannot resume: {', '.join(diff)} differ from the interrupted run "
                "(resume with the options it was started with; run.json holds them)",
                run_path,
            )
    # a killed writer leaves '<name>.tmp-<pid>' files: drop them before going on
    for sub in (*_every_output_dir(), RECORD_DIR):
        for tmp in (out / sub).glob("*.tmp-*"):
            tmp.unlink()
    for tmp in out.glob("*.tmp-*"):
        tmp.unlink()
    write_json(run_path, run)


def _write_records(out: Path, models: tuple, n: int) -> None:
    """Assemble ``records.jsonl`` from the sidecars of complete samples (a redrawn sample's
    is its last draw), sorted by name, streamed: memory flat in ``n``."""
    with atomic_path(out / "records.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
        for name in names_in_order(models, n):
            if _is_complete(out, name):
                record = json.loads((out / RECORD_DIR / f"{name}.json").read_text())
                f.write(json.dumps(record, sort_keys=True) + "\n")


def _digest(items: list[VOCItem]) -> str:
    text = json.dumps([asdict(it) for it in items], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
