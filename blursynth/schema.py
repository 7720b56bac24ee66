"""The on-disk schema of a blursynth dataset folder: one typed home, below writer and reader.

A dataset folder holds shards, ``manifest.json`` (this module's :class:`Manifest`),
``eval.json`` (:class:`EvalList`), a dataset card and ``SHA256SUMS``. The builders
(:mod:`blursynth.patches`, :mod:`blursynth.tiles`) write these through the types here and
the readers (:mod:`blursynth.shards`, the trainer) read them back through the same types, so
a field is named in one place only.

The dataset *kind* says what a row is (:mod:`blursynth.kinds`): ``"patches"`` (a P x P patch
and the label of its centre pixel) or ``"tiles"`` (S x S tiles of whole images with their
label maps). Manifests written before the field existed are patch datasets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from blursynth.errors import BlursynthError
from blursynth.kinds import get_kind, kind_names

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
EVAL_LIST = "eval.json"
CARD = "README.md"

DATASET_KINDS = kind_names()  # the registered dataset kinds (blursynth.kinds)
SPLITS = ("train", "val")
BLUR_TYPES = ("motion", "defocus", "unknown")
CLASS_NAMES = {2: ("sharp", "blurred"), 3: ("sharp", "motion", "defocus")}
"""Names of the label values of a tile dataset with 2 or 3 classes."""
KNOWN_BLUR_TYPES = BLUR_TYPES[:2]  # what a blur model renders and --blur-type/--only take
CATEGORIES = ("sharp", "blurred", "mixed")
FORMATS = ("hdf5", "caffe")
SOURCE_KINDS = ("shi", "synth", "folder")
POLARITIES = ("blurred-white", "sharp-white")
# Caffe's HDF5 layer refuses files over 2 GB; stay well under.
CAFFE_MAX_SHARD_BYTES = 1_500_000_000


# --- parameters -----------------------------------------------------------------------------


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
            if value is not None and value not in KNOWN_BLUR_TYPES:
                raise BlursynthError(f"{name} must be motion or defocus, got {value!r}")
        if self.format not in FORMATS:
            raise BlursynthError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.format == "caffe":
            row_bytes = 4 * 3 * self.patch_size**2
            if self.rows_per_shard * row_bytes > CAFFE_MAX_SHARD_BYTES:
                raise BlursynthError(
                    f"--rows-per-shard {self.rows_per_shard} makes caffe shards over "
                    f"{CAFFE_MAX_SHARD_BYTES / 1e9:.1f} GB (Caffe's HDF5 layer fails at 2 GB);"
                    f" use at most {CAFFE_MAX_SHARD_BYTES // row_bytes}"
                )

    def source_options(self) -> dict:
        """Keyword options of :func:`blursynth.sources.open_items` (with ``blur_type``)."""
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


@dataclass(frozen=True)
class TileParams:
    """Every parameter of a tile dataset (stored in the manifest and every shard).

    Source options, ``seed``, ``eval_images`` and ``only`` mean what they mean for
    :class:`PatchParams`, and the same values hold out the same images (both kinds are then
    scored on the same held-out images).

    Parameters
    ----------
    tile_size : int
        Side S of the square tiles (>= 32). Images smaller than S are padded; padding is
        labelled 255 (no label).
    classes : {2, 3}
        2: 0 sharp, 1 blurred. 3: 0 sharp, 1 motion, 2 defocus (the blur type of the
        source image; every image must have a known one).
    jitter : bool
        Move the inner tiles of the covering grid by random amounts that keep every pixel
        covered (a different overlap per image); off: an even grid.
    tiles_per_image : int or None
        At least this many tiles per image: the covering grid, then tiles at random
        positions up to the count (None: the grid alone).
    rows_per_shard : int
    """

    source: str
    root: str
    polarity: str | None = None
    threshold: int | None = None
    blur_type: str | None = None
    tile_size: int = 256
    classes: int = 2
    jitter: bool = True
    tiles_per_image: int | None = None
    seed: int = 0
    eval_images: int = 20
    only: str | None = None
    rows_per_shard: int = 1000
    format: str = "hdf5"

    def __post_init__(self):
        if self.tile_size < 32:
            raise BlursynthError(f"tile size must be >= 32, got {self.tile_size}")
        if self.classes not in (2, 3):
            raise BlursynthError(f"classes must be 2 or 3, got {self.classes}")
        if self.tiles_per_image is not None and self.tiles_per_image < 1:
            raise BlursynthError(f"--tiles-per-image must be >= 1, got {self.tiles_per_image}")
        if self.eval_images < 0 or self.seed < 0 or self.rows_per_shard < 1:
            raise BlursynthError(
                "--eval-images and --seed must be >= 0 and --rows-per-shard >= 1, got "
                f"{self.eval_images}, {self.seed}, {self.rows_per_shard}"
            )
        for name in ("blur_type", "only"):
            value = getattr(self, name)
            if value is not None and value not in KNOWN_BLUR_TYPES:
                raise BlursynthError(f"{name} must be motion or defocus, got {value!r}")
        if self.format != "hdf5":
            raise BlursynthError(f"tile datasets are written as hdf5, not {self.format!r}")

    source_options = PatchParams.source_options
    to_dict = PatchParams.to_dict

    def split_params(self) -> PatchParams:
        """The patch parameters whose image split this dataset shares."""
        return PatchParams(
            source=self.source,
            root=self.root,
            polarity=self.polarity,
            threshold=self.threshold,
            blur_type=self.blur_type,
            seed=self.seed,
            per_image=1,
            eval_images=self.eval_images,
            only=self.only,
        )

    def command(self, out: str = "DIR") -> str:
        """The ``blursynth tiles`` command line that builds this dataset."""
        parts = [
            "blursynth tiles",
            f"--source {self.source}",
            f"--root {self.root}",
            f"--out {out}",
        ]
        for name in ("polarity", "threshold", "blur_type", "only"):
            if getattr(self, name) is not None:
                parts.append(f"--{name.replace('_', '-')} {getattr(self, name)}")
        if not self.jitter:
            parts.append("--no-jitter")
        if self.tiles_per_image is not None:
            parts.append(f"--tiles-per-image {self.tiles_per_image}")
        parts += [
            f"--tile-size {self.tile_size}",
            f"--classes {self.classes}",
            f"--eval-images {self.eval_images}",
            f"--seed {self.seed}",
            f"--rows-per-shard {self.rows_per_shard}",
        ]
        return " ".join(parts)


# --- manifest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardEntry:
    """One finished shard: file name (in the dataset folder), rows, sha256."""

    file: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class SplitEntry:
    """A split's rows, its shards in order and (when known) how many images it draws on."""

    rows: int
    shards: tuple[ShardEntry, ...]
    images: int | None = None


@dataclass(frozen=True)
class ImageEntry:
    """A source image and where it went: ``train``, ``val``, ``eval``, ``skipped``..."""

    stem: str
    blur_type: str
    split: str = "unused"


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``: what a dataset folder holds and how it was made.

    ``params`` are the builder's parameters (:class:`PatchParams` for patches), kept as a
    plain dict so a reader never needs the builder. ``images`` lists every source item in
    source order (a row's ``image_index`` indexes it).
    """

    splits: dict[str, SplitEntry]
    params: dict
    kind: str = "patches"
    plan_sha256: str = ""
    command: str = ""
    fields: dict = field(default_factory=dict)
    images: tuple[ImageEntry, ...] = ()
    eval_images: tuple[ImageEntry, ...] = ()
    eval_list: str | None = None
    eval_sha256: str | None = None
    skipped: tuple[dict, ...] = ()
    counts: tuple[dict, ...] = ()
    schema_version: int = SCHEMA_VERSION
    blursynth_version: str = ""
    blur_types: tuple[str, ...] = BLUR_TYPES
    categories: tuple[str, ...] = CATEGORIES

    @property
    def format(self) -> str:
        return self.params.get("format", "hdf5")

    @property
    def patch_size(self) -> int:
        return int(self.params["patch_size"])

    @property
    def row_size(self) -> int:
        """The side of a row's image: the patch size, or the tile size of a tile dataset."""
        return int(self.params[get_kind(self.kind).size_param])

    def stems(self, split: str) -> list[str]:
        """Stems of the source images behind ``split`` (``train``, ``val``, ``eval``...)."""
        return [im.stem for im in self.images if im.split == split]

    def to_dict(self) -> dict:
        """JSON-ready, with ``format`` at the top level as readers of schema 1 expect."""
        return {**asdict(self), "format": self.format}

    @classmethod
    def from_dict(cls, raw: dict, path: str | Path = MANIFEST) -> Manifest:
        """Parse and check a manifest; a :class:`BlursynthError` naming ``path`` if bad."""
        try:
            if raw["schema_version"] != SCHEMA_VERSION:
                raise BlursynthError(
                    f"schema version {raw['schema_version']}, this blursynth reads "
                    f"{SCHEMA_VERSION}",
                    path,
                )
            splits = {name: _split_entry(info) for name, info in raw["splits"].items()}
            params = dict(raw["params"])
            kind = raw.get("kind", "patches")
            return cls(
                splits=splits,
                params=params,
                kind=kind,
                plan_sha256=raw.get("plan_sha256", ""),
                command=raw.get("command", ""),
                fields=dict(raw.get("fields", {})),
                images=tuple(_image(im) for im in raw.get("images") or ()),
                eval_images=tuple(_image(im, "eval") for im in raw.get("eval_images") or ()),
                eval_list=raw.get("eval_list"),
                eval_sha256=raw.get("eval_sha256"),
                skipped=tuple(raw.get("skipped") or ()),
                counts=tuple(raw.get("counts") or ()),
                schema_version=raw["schema_version"],
                blursynth_version=raw.get("blursynth_version", ""),
                blur_types=tuple(raw.get("blur_types", BLUR_TYPES)),
                categories=tuple(raw.get("categories", CATEGORIES)),
            )
        except BlursynthError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BlursynthError(f"invalid manifest ({exc!r})", path) from None

    @classmethod
    def read(cls, path: str | Path) -> tuple[Manifest, bytes]:
        """The manifest at ``path`` and its raw bytes (their sha256 identifies the data)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise BlursynthError(
                "no manifest.json: not a finished dataset (rerun the command that builds it to "
                "complete it)",
                path,
            ) from None
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise BlursynthError(f"invalid manifest ({exc})", path) from None
        if not isinstance(parsed, dict):
            raise BlursynthError("invalid manifest (not a JSON object)", path)
        manifest = cls.from_dict(parsed, path)
        get_kind(manifest.kind, path)  # an unknown kind: one line naming the known ones
        return manifest, raw


def published_root(root: str | Path, folder: str | Path) -> str:
    """The source folder as a dataset records it: relative to the dataset folder, so that a
    published dataset names no path of the machine that built it."""
    import os

    real = Path(root).resolve()
    # as the user named it (a symlinked root stays a link: the same build records the same
    # bytes wherever the link points), unless a symlinked dataset folder makes that path
    # lead elsewhere from the folder; then through the resolved folders
    lexical = os.path.relpath(os.path.abspath(root), os.path.abspath(folder))
    if (Path(folder) / lexical).resolve() == real:
        return lexical
    return os.path.relpath(real, Path(folder).resolve())


def resolve_root(recorded: str, folder: str | Path) -> Path:
    """The source folder a dataset recorded (:func:`published_root`), as a path from here;
    absolute roots of older datasets are kept as they are."""
    path = Path(recorded)
    return path if path.is_absolute() else Path(folder) / path


def dataset_kind(folder: str | Path) -> str:
    """The kind named by a folder's manifest (``patches`` when it names none or cannot be
    read: the reader then reports what is wrong)."""
    try:
        raw = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        return str(raw.get("kind", "patches"))
    except (OSError, ValueError, AttributeError):
        return "patches"


def _split_entry(info: dict) -> SplitEntry:
    shards = tuple(
        ShardEntry(str(s["file"]), int(s["rows"]), str(s.get("sha256", ""))) for s in info["shards"]
    )
    rows = int(info.get("rows", sum(s.rows for s in shards)))
    return SplitEntry(rows=rows, shards=shards, images=info.get("images"))


def _image(entry: dict, split: str | None = None) -> ImageEntry:
    return ImageEntry(
        str(entry["stem"]), str(entry.get("blur_type", "unknown")), entry.get("split", split)
    )


def manifest_base() -> dict:
    """Fields every manifest starts with (for writers that build the dict by hand)."""
    from blursynth import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "blursynth_version": __version__,
        "blur_types": list(BLUR_TYPES),
        "categories": list(CATEGORIES),
    }


# --- eval.json ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalList:
    """``eval.json``: the source a dataset was built from and its held-out images.

    ``options`` are the source's options (polarity, threshold, blur_type), so
    :func:`blursynth.sources.open_items` reopens the same images.
    """

    source: str
    root: str
    options: dict
    items: tuple[ImageEntry, ...]

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "root": self.root,
            "options": dict(self.options),
            "items": [{"stem": it.stem, "blur_type": it.blur_type} for it in self.items],
        }

    @classmethod
    def read(cls, path: str | Path) -> EvalList:
        path = Path(path)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BlursynthError("no eval.json: this dataset holds out no images", path) from None
        except ValueError as exc:
            raise BlursynthError(f"invalid eval list ({exc})", path) from None
        try:
            return cls(
                source=spec["source"],
                root=spec["root"],
                options=dict(spec.get("options", {})),
                items=tuple(_image(entry, "eval") for entry in spec["items"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BlursynthError(f"invalid eval list: missing or bad {exc!r}", path) from None
