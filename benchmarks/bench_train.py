"""Training throughput: the model step against the data path, and the time for the recipe.

Measures, for the report's BlurNet at batch 64:

* the model step alone (forward, backward, SGD step) on random uint8 batches already on the
  device: samples/s (on CPU for each ``--threads``; on CUDA in fp32 and bf16 autocast, and
  with ``--compile`` both again under ``torch.compile``);
* the data path alone: device-resident indexing (:class:`ResidentBatches`) and streamed HDF5
  reading (:class:`StreamedBatches`, 0 and ``--workers`` workers) on a temporary dataset;

and prints the estimated wall time of the recipe's 1,000,000 iterations, limited by the
slower of the two. Run by hand; results go to ``docs/benchmarks.md``::

    python benchmarks/bench_train.py                      # CPU, 1 and 2 threads
    python benchmarks/bench_train.py --device cuda        # on a GPU machine
    python benchmarks/bench_train.py --arch unet --batch-size 8 [--device cuda]  # dense model
    python benchmarks/bench_train.py --arch liteunet --crop 224 --freeze-blocks 0  # whole encoder
    python benchmarks/bench_train.py --shards DIR         # data path on a real dataset
    python benchmarks/bench_train.py --no-data --json r.json  # model step only, machine-readable
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blursynth.imageio import write_json
from blursynth.schema import MANIFEST, manifest_base
from blursynth.shards import ShardWriter, open_dataset
from blursynth_train.data import ResidentBatches, StreamedBatches, load_split
from blursynth_train.models import create_model, get_family, model_kinds, parameter_groups

RECIPE_ITERATIONS = 1_000_000


def random_dataset(root: Path, rows: int, patch_size: int = 31) -> Path:
    """A patch dataset of random rows (content does not matter for throughput)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    splits = {}
    for name, n in (("train", rows), ("val", 64)):
        with ShardWriter(root, name, n, 100_000, patch_size, "hdf5", {"plan_sha256": "b"}) as w:
            for start in range(0, n, 4096):
                m = min(4096, n - start)
                zeros = np.zeros(m, np.int32)
                w.write(
                    {
                        "patches": rng.integers(
                            0, 256, (m, 3, patch_size, patch_size), dtype=np.uint8
                        ),
                        "label": rng.integers(0, 2, m, dtype=np.uint8),
                        "blur_type": zeros.astype(np.uint8),
                        "category": zeros.astype(np.uint8),
                        "image_index": zeros,
                        "center_y": zeros,
                        "center_x": zeros,
                    }
                )
        splits[name] = {"rows": n, "shards": [vars(r) for r in w.records]}
    write_json(
        root / MANIFEST,
        {
            **manifest_base(),
            "plan_sha256": "b",
            "splits": splits,
            "params": {"patch_size": patch_size, "format": "hdf5"},
            "counts": [],
        },
    )
    return root


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_step(
    device: torch.device,
    batch: int,
    steps: int,
    bf16: bool = False,
    compile: bool = False,
    arch: str = "blurnet",
    crop: int = 128,
    freeze_blocks: int | None = None,
) -> float:
    """Samples/s of forward + backward + optimizer step on batches already on ``device``.

    ``arch``: a registered family; a patch model on 31 x 31 patches (SGD, the report's), a
    dense one on ``crop`` x ``crop`` tiles with label maps (AdamW over its parameter groups,
    as ``fit`` builds them). ``freeze_blocks``: the liteunet's option (None: its default).
    """
    torch.manual_seed(0)
    family = get_family(arch)
    options = {"pretrained": "none"} if "pretrained" in family.options else {}
    if freeze_blocks is not None:
        options["freeze_blocks"] = freeze_blocks
    params = {"classes": 2} if family.dense else {"patch_size": 31}
    model = create_model(family.config_for_dataset(params, options)).to(device).train()
    side = crop if family.dense else 31
    x = torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, device=device)
    y = torch.randint(0, 2, (batch, side, side) if family.dense else (batch,), device=device)
    if family.dense:
        opt = torch.optim.AdamW(parameter_groups(model, 1e-4), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    step_model = torch.compile(model) if compile else model
    warmup = 3 if device.type == "cpu" else 20
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def data_path(batches, device: torch.device, n: int, batch: int) -> float:
    """Samples/s of drawing ``n`` batches (after the first, which pays the start-up)."""
    it = batches.iterate(0)
    next(it)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        x, y = next(it)
    sync(device)
    return n * batch / (time.perf_counter() - t0)


def data_path_rates(args, device: torch.device, b: int) -> list[tuple[str, float]]:
    """Samples/s of the data paths: device-resident indexing, streamed HDF5 (0 and
    ``--workers`` workers), on ``--shards`` or a temporary dataset of random rows."""
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.shards or random_dataset(Path(tmp) / "ds", args.rows)
        split = open_dataset(root)["train"]
        n = min(len(split) // b - 1, 2000)
        resident = ResidentBatches(*load_split(split, device), b, seed=0)
        rates.append(
            (f"data: device-resident indexing ({device.type})", data_path(resident, device, n, b))
        )
        for w in sorted({0, args.workers}):
            streamed = StreamedBatches(split, b, seed=0, device=device, workers=w)
            rates.append((f"data: streamed HDF5, {w} worker(s)", data_path(streamed, device, n, b)))
    return rates


def hours(samples_per_s: float, batch: int) -> float:
    return RECIPE_ITERATIONS * batch / samples_per_s / 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="CPU thread counts for the model step.",
    )
    ap.add_argument(
        "--arch",
        default="blurnet",
        choices=model_kinds(),
        help="Model family: the report's CNN on 31-px patches, or a dense one on --crop tiles.",
    )
    ap.add_argument("--crop", type=int, default=128, help="Dense models' tile side.")
    ap.add_argument(
        "--freeze-blocks", type=int, help="liteunet: frozen encoder blocks (default: its own)."
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=0, help="Timed model steps (0: 6 CPU, 200 GPU).")
    ap.add_argument("--rows", type=int, default=65536, help="Rows of the temporary dataset.")
    ap.add_argument("--shards", type=Path, help="Use this dataset for the data path instead.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="Also time torch.compile (GPU).")
    ap.add_argument("--json", type=Path, help="Also write the results here (label: samples/s).")
    ap.add_argument("--no-data", action="store_true", help="Time the model step only.")
    args = ap.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    b = args.batch_size
    steps = args.steps or (6 if device.type == "cpu" else 200)
    results: list[tuple[str, float]] = []

    # -- model step ------------------------------------------------------------------------
    if device.type == "cpu":
        for t in args.threads:
            torch.set_num_threads(t)
            results.append(
                (
                    f"model step, CPU {t} thread(s)",
                    model_step(
                        device,
                        b,
                        steps,
                        arch=args.arch,
                        crop=args.crop,
                        freeze_blocks=args.freeze_blocks,
                    ),
                )
            )
        torch.set_num_threads(max(args.threads))
    else:
        name = torch.cuda.get_device_name(device)
        variants = [(False, False), (True, False)]
        if args.compile:
            variants += [(False, True), (True, True)]
        for bf16, compiled in variants:
            label = f"model step, {name} {'bf16' if bf16 else 'fp32'}"
            label += " + compile" if compiled else ""
            rate = model_step(
                device,
                b,
                steps,
                bf16=bf16,
                compile=compiled,
                arch=args.arch,
                crop=args.crop,
                freeze_blocks=args.freeze_blocks,
            )
            results.append((label, rate))
    step_rate = max(r for _, r in results)

    # -- data path -------------------------------------------------------------------------
    if not args.no_data:
        results += data_path_rates(args, device, b)
    model = "BlurNet" if args.arch == "blurnet" else f"{args.arch}, {args.crop} px crops"
    print(f"{model}, batch {b}, device {device}, torch {torch.__version__}")
    print("| path | samples/s | 1M iterations at this rate (h) |")
    print("|---|---:|---:|")
    for label, rate in results:
        print(f"| {label} | {rate:,.0f} | {hours(rate, b):,.1f} |")
    print(
        f"\nestimate for {RECIPE_ITERATIONS:,} iterations at batch {b}: "
        f"{hours(step_rate, b):,.1f} h ({hours(step_rate, b) / 24:,.1f} days), "
        "bounded by the model step when it is slower than the data path"
    )
    if args.json:
        write_json(args.json, {"arch": args.arch, "batch_size": b, "samples_per_s": dict(results)})


if __name__ == "__main__":
    main()
