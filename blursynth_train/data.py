"""Training batches from blursynth shards: device-resident or streamed.

Both sources give the same contract: :meth:`iterate` yields ``(patches, labels)`` on the
training device, ``patches`` uint8 ``(B, 3, P, P)`` and ``labels`` int64 ``(B,)``, from a given
iteration onwards and forever. The order is a pure function of ``(seed, iteration)``, so a run
resumed at iteration ``i`` sees exactly the batches an uninterrupted run would have seen, and
no sampler state needs to be saved.

* :class:`ResidentBatches` loads the whole split once (uint8, block by block) into device
  memory (GPU memory, or RAM on CPU) and draws each batch by indexing with a random
  permutation per epoch, so the accelerator never waits for the disk.
* :class:`StreamedBatches` reads shuffled contiguous blocks with :class:`DataLoader` workers
  (rows are pre-shuffled on disk, so a contiguous block is a random sample), shuffles the
  rows inside each block, and cuts it into batches. Workers open the HDF5 files lazily,
  inside their own process.

An epoch has ``len(split) // batch_size`` batches in both sources; the remaining rows of an
epoch are skipped (a different set each epoch for the resident source).
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from blursynth.errors import BlursynthError
from blursynth.kinds import get_kind, kind_names
from blursynth.progress import progressbar
from blursynth.shards import MixedSplit, ShardedDataset, open_dataset
from blursynth.shards.format import sha256_file

BATCH_FIELDS = {name: get_kind(name).batch_fields for name in kind_names()}
"""The (input, label) fields a batch holds, per dataset kind (:mod:`blursynth.kinds`)."""
"""The fields a batch is made of, by dataset kind: the rows' image and their label(s)."""


# --- opening the datasets of a run ----------------------------------------------------------


def training_data_sha256(manifest_sha256s: Sequence[str]) -> str:
    """One hash for the data a model was trained on.

    A single dataset keeps its manifest's sha256; several hash their manifests' hashes in
    the order given (the order fixes how :class:`MixedSplit` interleaves them).
    """
    if len(manifest_sha256s) == 1:
        return manifest_sha256s[0]
    return hashlib.sha256("\n".join(manifest_sha256s).encode()).hexdigest()


BLOCK_BYTES = 64 << 20
"""Bytes read at a time when a split is loaded or checked: 16,384 rows were 47 MB of patches
but 3.2 GB of 256-px tiles (a 1.3 GB dataset peaked at 7.3 GB of RAM)."""


def block_rows(split, fields: Sequence[str], target: int = BLOCK_BYTES) -> int:
    """Rows of ``fields`` that fill about ``target`` bytes (at least one)."""
    if len(split) == 0:
        return 1
    row = split.read(0, 1, fields=tuple(fields))
    return max(1, target // max(1, sum(row[f].nbytes for f in fields)))


def check_labels(split, classes: int) -> None:
    """Refuse a split with a label (or patch category) that cannot be, before training.

    Labels must lie in ``0 .. classes - 1`` (tile maps: or 255, no label); a patch's label
    must agree with its category (sharp -> 0, blurred -> 1). A flipped byte in a shard is
    caught here instead of deep inside the loss.

    Raises
    ------
    BlursynthError
        Naming the shard file and the row in it.
    """
    fields = ("label", "category") if "category" in split.fields else ("label",)
    step = block_rows(split, fields)
    for start in range(0, len(split), step):
        rows = split.read(start, min(start + step, len(split)), fields=fields)
        label = rows["label"]
        bad = (label >= classes) & (label != 255) if label.ndim > 1 else label >= classes
        bad = bad.reshape(len(label), -1).any(axis=1)
        if "category" in rows:
            cat = rows["category"]
            bad |= (cat > 2) | ((cat == 0) & (label != 0)) | ((cat == 1) & (label != 1))
        if bad.any():
            row = start + int(np.flatnonzero(bad)[0])
            path, inner = split.locate(row)
            raise BlursynthError(
                f"row {inner}: label {int(label[row - start].max())} or its category is out "
                f"of range ({classes} classes); the shard is damaged (`blursynth verify` "
                "lists every problem)",
                path,
            )


@dataclass
class TrainingData:
    """The dataset folders of one run, opened and checked.

    ``train`` interleaves every dataset's train split (:class:`MixedSplit`) when there are
    several; ``val`` is the val split of ``val_dataset`` when one is given (e.g. real images
    to choose the checkpoint of a model trained on renderings), else of the first dataset;
    its first ``n_val`` rows validate. ``sha256`` identifies the training data
    (:func:`training_data_sha256`), ``val_sha256`` the separate validation dataset (None
    without one).
    """

    datasets: list[ShardedDataset]
    train: object
    val: object
    n_val: int
    sha256: str
    val_dataset: ShardedDataset | None = None
    val_sha256: str | None = None

    @property
    def params(self) -> dict:
        """The first dataset's parameters (all agree on the row shape)."""
        return self.datasets[0].params

    def nbytes(self) -> int:
        """Bytes of the training rows and the validated rows, as a batch holds them."""
        first = self.datasets[0]
        row = get_kind(first.kind).row_bytes(first.manifest.row_size)
        return (len(self.train) + self.n_val) * row

    def close(self) -> None:
        for d in self.datasets:
            d.close()
        if self.val_dataset is not None:
            self.val_dataset.close()


def open_training_data(
    paths: Sequence[str],
    *,
    dataset_kind: str,
    val_rows: int | None,
    val_path: str | None = None,
    verify: bool = True,
    quiet: bool = True,
) -> TrainingData:
    """Open dataset folders for training a model of a family that reads ``dataset_kind``;
    validate on ``val_path``'s val split when given, else on the first folder's. With
    ``verify``, every shard read must hash to the sha256 its manifest records
    (:func:`check_digests`).

    Raises
    ------
    BlursynthError
        A folder of another kind or format, row shapes or class counts that differ, too
        few rows, or a damaged shard.
    """
    datasets = [open_dataset(p) for p in paths]
    if verify:
        check_digests(datasets + ([open_dataset(val_path)] if val_path else []), quiet=quiet)
    first = datasets[0]
    val_dataset = open_dataset(val_path) if val_path is not None else None
    for d in datasets if val_dataset is None else [*datasets, val_dataset]:
        if d.kind != dataset_kind:
            raise BlursynthError(
                f"this model trains on {dataset_kind} datasets, not {d.kind}", d.path
            )
        if d.format != "hdf5":
            raise BlursynthError(
                f"training reads uint8 shards (format hdf5), not {d.format!r}", d.path
            )
        if d.manifest.row_size != first.manifest.row_size:
            raise BlursynthError(
                f"row size {d.manifest.row_size} differs from {first.manifest.row_size} of "
                f"{first.path}",
                d.path,
            )
    classes = int(first.params.get("classes", 2))
    for d in datasets:
        for split in ("train", "val"):
            check_labels(d[split], int(d.params.get("classes", 2)))
    if val_dataset is not None:
        if int(val_dataset.params.get("classes", 2)) != classes:
            raise BlursynthError(
                f"validation dataset has {val_dataset.params.get('classes', 2)} classes, the "
                f"training data {classes}",
                val_dataset.path,
            )
        check_labels(val_dataset["val"], classes)
    train = first["train"] if len(datasets) == 1 else MixedSplit([d["train"] for d in datasets])
    val = (val_dataset or first)["val"]
    n_val = len(val) if val_rows is None else min(val_rows, len(val))
    sha = training_data_sha256([d.manifest_sha256 for d in datasets])
    val_sha = None if val_dataset is None else val_dataset.manifest_sha256
    return TrainingData(datasets, train, val, n_val, sha, val_dataset, val_sha)


def check_digests(datasets: Sequence[ShardedDataset], quiet: bool = True) -> None:
    """Hash every train and val shard once and compare with the manifest's sha256: a flipped
    byte in a shard's data passes every schema check, and would train silently.

    Raises
    ------
    BlursynthError
        Naming the first shard whose bytes differ.
    """
    shards = [
        (d.path / s.file, s.sha256)
        for d in datasets
        for split in ("train", "val")
        if split in d.manifest.splits
        for s in d.manifest.splits[split].shards
    ]
    with progressbar(shards, label="checking shards", quiet=quiet) as bar:
        for path, digest in bar:
            if digest and sha256_file(path) != digest:
                raise BlursynthError(
                    "sha256 differs from the manifest: the shard is damaged (`blursynth "
                    "verify` lists every problem; rebuild it, or pass --no-verify to train "
                    "anyway)",
                    path,
                )


def _batch_fields(split) -> tuple[str, str]:
    """The (input, label) field names of a split's rows: those of the dataset kind whose
    batch fields it holds (a split of several datasets reads as the first one's)."""
    held = set(split.fields)
    return next(f for f in BATCH_FIELDS.values() if set(f) <= held)


def random_crop(images: torch.Tensor, labels: torch.Tensor, size: int):
    """One random ``size`` x ``size`` window per batch of dense rows (same for the label
    maps); draws from the global RNG, like :func:`augment`."""
    h, w = images.shape[-2:]
    if size >= min(h, w):
        return images, labels
    y = int(torch.randint(0, h - size + 1, (1,)))
    x = int(torch.randint(0, w - size + 1, (1,)))
    return images[..., y : y + size, x : x + size], labels[..., y : y + size, x : x + size]


def epoch_generator(seed: int, *key: int) -> torch.Generator:
    """A CPU generator for one epoch (and optionally one block), independent of the device."""
    state = np.random.SeedSequence([seed, *key]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def memory_budget(device: torch.device) -> int:
    """Bytes of data we allow ourselves to keep on ``device``.

    Half of the free GPU memory (the rest is for the model, activations and the allocator), or
    half of the available RAM on CPU.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return _available_ram() // 2


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def load_split(
    split,
    device: torch.device,
    *,
    rows: int | None = None,
    quiet: bool = True,
    label: str = "loading",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy the first ``rows`` rows of a split to ``device`` block by block.

    Returns
    -------
    patches : torch.Tensor
        uint8 ``(n, 3, P, P)`` on ``device``.
    labels : torch.Tensor
        int64 ``(n,)`` on ``device``.
    """
    n = len(split) if rows is None else min(rows, len(split))
    fields = _batch_fields(split)
    first = split.read(0, min(n, 1), fields=fields)
    patches = torch.empty((n, *first[fields[0]].shape[1:]), dtype=torch.uint8, device=device)
    # patch labels as int64 (what the loss takes); label maps stay uint8 (8x smaller) and
    # become int64 per batch
    dtype = torch.int64 if first["label"].ndim == 1 else torch.uint8
    labels = torch.empty((n, *first["label"].shape[1:]), dtype=dtype, device=device)
    step = block_rows(split, fields)
    with progressbar(range(0, n, step), label=label, quiet=quiet) as bar:
        for start in bar:
            stop = min(start + step, n)
            block = split.read(start, stop, fields=fields)
            patches[start:stop] = torch.from_numpy(np.ascontiguousarray(block[fields[0]]))
            labels[start:stop] = torch.from_numpy(block["label"]).to(dtype)
    return patches, labels


class ResidentBatches:
    """Batches drawn on the device from a split held in device memory.

    Parameters
    ----------
    patches, labels : torch.Tensor
        From :func:`load_split`.
    batch_size : int
    seed : int
        Seeds the permutation of each epoch.
    """

    def __init__(self, patches: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int):
        if batch_size > len(labels):
            raise ValueError(f"batch_size {batch_size} exceeds the {len(labels)} rows")
        self.patches, self.labels = patches, labels
        self.batch_size, self.seed = batch_size, seed
        self.batches_per_epoch = len(labels) // batch_size

    def iterate(self, start_iteration: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from ``start_iteration`` onwards, forever."""
        epoch, j = divmod(start_iteration, self.batches_per_epoch)
        b = self.batch_size
        while True:
            perm = torch.randperm(len(self.labels), generator=epoch_generator(self.seed, epoch))
            perm = perm.to(self.patches.device)
            for k in range(j, self.batches_per_epoch):
                idx = perm[k * b : (k + 1) * b]
                yield self.patches[idx], self.labels[idx].long()
            epoch, j = epoch + 1, 0


class _Blocks(Dataset):
    """Map-style dataset whose item ``(epoch, block)`` is one shuffled block of rows.

    The split object is only touched through :meth:`read` inside ``__getitem__``, that is
    inside the worker process, where the reader opens its HDF5 files.
    """

    def __init__(self, split, block_rows: int, seed: int):
        self.split, self.block_rows, self.seed = split, block_rows, seed

    def __len__(self) -> int:
        return -(-len(self.split) // self.block_rows)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, block = key
        start = block * self.block_rows
        stop = min(start + self.block_rows, len(self.split))
        data = self.split.read(start, stop, fields=_batch_fields(self.split))
        order = torch.randperm(stop - start, generator=epoch_generator(self.seed, epoch, block))
        patches = torch.from_numpy(np.ascontiguousarray(data[_batch_fields(self.split)[0]]))[order]
        labels = torch.from_numpy(data["label"].astype(np.int64))[order]
        return patches, labels


def _block_order(n_blocks: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n_blocks, generator=epoch_generator(seed, epoch)).tolist()


class _BlockOrder:
    """Sampler: ``(epoch, block)`` keys from a starting point onwards, forever."""

    def __init__(self, n_blocks: int, seed: int, epoch: int, first: int):
        self.n_blocks, self.seed, self.epoch, self.first = n_blocks, seed, epoch, first

    def __iter__(self):
        epoch, first = self.epoch, self.first
        while True:
            for block in _block_order(self.n_blocks, self.seed, epoch)[first:]:
                yield epoch, block
            epoch, first = epoch + 1, 0


def _ignore_sigint(worker_id: int) -> None:
    """Workers leave Ctrl-C to the training loop, which saves a checkpoint and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StreamedBatches:
    """Batches cut from shuffled blocks read by :class:`DataLoader` workers.

    Parameters
    ----------
    split
        A split of :func:`blursynth.shards.open_dataset` (``read``, ``__len__``).
    batch_size : int
    seed : int
    device : torch.device
        Batches are moved there (from pinned memory on CUDA).
    workers : int
        Reader processes; 0 reads in the main process.
    blocks_per_read : int
        A block holds ``blocks_per_read * batch_size`` rows (contiguous on disk).
    """

    def __init__(
        self,
        split,
        batch_size: int,
        seed: int,
        device: torch.device,
        *,
        workers: int = 2,
        blocks_per_read: int = 64,
    ):
        if batch_size > len(split):
            raise ValueError(f"batch_size {batch_size} exceeds the {len(split)} rows")
        self.blocks = _Blocks(split, batch_size * blocks_per_read, seed)
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.workers = workers
        # every block but the last is a whole number of batches, so no rows are lost but the
        # remainder of the split
        self.batches_per_epoch = len(split) // batch_size

    def _position(self, iteration: int) -> tuple[int, int, int]:
        """(epoch, index of the block in that epoch's order, batch inside the block)."""
        epoch, k = divmod(iteration, self.batches_per_epoch)
        blocks = self.blocks
        for pos, block in enumerate(_block_order(len(blocks), self.seed, epoch)):
            rows = min(blocks.block_rows, len(blocks.split) - block * blocks.block_rows)
            if k < rows // self.batch_size:
                return epoch, pos, k
            k -= rows // self.batch_size
        raise AssertionError("unreachable: k < batches_per_epoch")

    def iterate(self, start_iteration: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from ``start_iteration`` onwards, forever."""
        epoch, block_pos, inner = self._position(start_iteration)
        order = _BlockOrder(len(self.blocks), self.seed, epoch, block_pos)
        cuda = self.device.type == "cuda"
        loader = DataLoader(
            self.blocks,
            batch_size=None,
            sampler=order,
            num_workers=self.workers,
            pin_memory=cuda,
            persistent_workers=False,
            worker_init_fn=_ignore_sigint,
            prefetch_factor=2 if self.workers else None,
            # its own generator: the loader must not draw from the global RNG,
            # whose state resume restores for dropout
            generator=torch.Generator().manual_seed(self.seed),
        )
        b = self.batch_size
        for patches, labels in loader:
            for k in range(inner, len(labels) // b):
                x, y = patches[k * b : (k + 1) * b], labels[k * b : (k + 1) * b]
                yield x.to(self.device, non_blocking=cuda), y.to(self.device, non_blocking=cuda)
            inner = 0


def eval_batch_size(split_or_tensors, pixels: int, most: int) -> int:
    """Rows per validation batch: at most ``most``, and about ``pixels`` pixels (at least
    one row)."""
    if isinstance(split_or_tensors, tuple):
        shape = split_or_tensors[0].shape
    else:
        split = split_or_tensors
        if len(split) == 0:
            return most
        shape = split.read(0, 1, fields=_batch_fields(split)[:1])[_batch_fields(split)[0]].shape
    return max(1, min(most, pixels // (shape[-1] * shape[-2])))


def eval_batches(
    split_or_tensors, batch_size: int, device: torch.device, rows: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Validation batches in file order.

    ``split_or_tensors`` is either ``(patches, labels)`` already on the device (from
    :func:`load_split`) or a split read chunk by chunk.
    """
    if isinstance(split_or_tensors, tuple):
        patches, labels = split_or_tensors
        n = len(labels) if rows is None else min(rows, len(labels))
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield patches[start:stop], labels[start:stop].long()
        return
    split = split_or_tensors
    n = len(split) if rows is None else min(rows, len(split))
    for start in range(0, n, batch_size):
        data = split.read(start, min(start + batch_size, n), fields=_batch_fields(split))
        yield (
            torch.from_numpy(np.ascontiguousarray(data[_batch_fields(split)[0]])).to(device),
            torch.from_numpy(data["label"].astype(np.int64)).to(device),
        )


def augment(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip / 90-degree rotation of each row (the 8 symmetries of the square).

    ``images`` ``(B, C, S, S)``; ``labels`` ``(B,)`` (a patch's centre pixel, which no
    symmetry moves: unchanged) or label maps ``(B, S, S)`` (transformed with their image).
    Draws from the global RNG of the images' device (saved in checkpoints, so ``--resume``
    stays exact); no host sync.
    """
    k = torch.randint(0, 8, (len(images),), device=images.device)
    images = _symmetries(images, k)
    if labels.ndim == 3:
        labels = _symmetries(labels[:, None], k)[:, 0]
    return images, labels


# photometric(): each factor is drawn log-uniformly in [1 / spread, spread], per row
PHOTOMETRIC_SPREAD = {"gamma": 1.25, "gain": 1.25, "contrast": 1.25, "saturation": 1.4}
_LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights of the grey that saturation pulls towards


def photometric(images: torch.Tensor) -> torch.Tensor:
    """Random tone and colour of each row: gamma, gain, contrast, then saturation.

    ``images`` ``(B, 3, H, W)``, uint8 or float in [0, 255]; returns float32 in [0, 255]
    (the models read both). Each factor is drawn per row from :data:`PHOTOMETRIC_SPREAD`.
    Gamma, gain and contrast (about the row's mean) are increasing maps of every value, and
    saturation mixes each pixel with its own luma, which it keeps: tone and colour change,
    no edge appears, vanishes or moves, so the labels stay true. Real photos differ from
    renderings, and from each other, in exposure, tone curve and colour, none of which is
    blur. The result is clipped to [0, 255]. Draws from the global RNG of the images'
    device, like :func:`augment`.
    """
    # Python numbers only (no host-to-device copy in the training step)
    u = torch.rand((len(PHOTOMETRIC_SPREAD), len(images), 1, 1, 1), device=images.device)
    gamma, gain, contrast, saturation = (
        spread ** (2 * draw - 1)
        for spread, draw in zip(PHOTOMETRIC_SPREAD.values(), u, strict=True)
    )
    x = (images.float() / 255.0) ** gamma * gain
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * contrast
    luma = sum(w * x[:, c : c + 1] for c, w in enumerate(_LUMA))
    x = luma + (x - luma) * saturation
    return x.clamp(0.0, 1.0) * 255.0


def _symmetries(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Row ``i`` of ``x`` under symmetry ``k[i]`` (0-3: rotations; 4-7: flip, then rotate)."""
    flipped = x.flip(-1)
    variants = torch.stack(
        [torch.rot90(v, r, dims=(-2, -1)) for v in (x, flipped) for r in range(4)]
    )
    return variants[k, torch.arange(len(x), device=x.device)]
