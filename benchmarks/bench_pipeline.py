"""``segment`` end to end against the model alone: what reading and writing cost on top.

Run by hand (results in ``docs/benchmarks.md``, section ``segment``)::

    BLURSYNTH_SHARED_DATA=../shared/data python benchmarks/bench_pipeline.py \
        [--model bundled] [--images 16] [--device cpu] [--repeat 2]

Images: the CUHK photographs of ``cuhk-mini`` at their own sizes (16; ``--images`` takes the
first N). Side by side in one run, each the best of ``--repeat``:

* model only: :class:`~blursynth_train.predict.Predictor` on the images already decoded;
* serial: read, model, write one batch after the other with PNG level 6 (``segment`` before
  the I/O threads);
* ``segment_images`` as the CLI runs it (I/O threads, PNG level 1), with and without the
  guided filter (the CLI's default post-processing);

and, once, the time to import torch and build the model (paid once per command).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from blursynth_train import segment
from blursynth_train.checkpoint import load_model
from blursynth_train.predict import Predictor
from blursynth_train.weights import resolve_weights


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def serial(model, paths, out: Path, batch: int) -> None:
    """The loop without overlap, every PNG at zlib level 6."""
    predictor = Predictor(model)
    level, segment.PNG_LEVEL = segment.PNG_LEVEL, 6
    try:
        for k in range(0, len(paths), batch):
            loaded, _ = segment._read_batch(paths[k : k + batch])
            preds = predictor([im for _, im in loaded])
            for (path, image), pred in zip(loaded, preds, strict=True):
                segment._write_outputs(path, image, pred, out, 0.5, "none")
    finally:
        segment.PNG_LEVEL = level


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bundled")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    root = Path(os.environ.get("BLURSYNTH_SHARED_DATA", "../shared/data")) / "cuhk-mini" / "image"
    paths = sorted(root.iterdir())[: args.images]
    device = torch.device(args.device)
    model, _ = load_model(resolve_weights(args.model), device)
    images = [segment.read_image_u8(p) for p in paths]
    predictor = Predictor(model)
    pixels = sum(im.shape[0] * im.shape[1] for im in images) / len(images)
    print(
        f"{len(paths)} CUHK images ({pixels / 1e6:.2f} MP on average), {args.model} "
        f"({type(model).__name__}), {device}, {torch.get_num_threads()} threads"
    )

    def model_only():
        for k in range(0, len(images), args.batch):
            predictor(images[k : k + args.batch])

    with tempfile.TemporaryDirectory() as tmp:
        t = {"model only": best(model_only, args.repeat)}
        t["serial, PNG level 6"] = best(
            lambda: serial(model, paths, Path(tmp) / "s", args.batch), args.repeat
        )
        for pp in ("none", "guided"):
            t[f"segment_images, --postprocess {pp}"] = best(
                lambda pp=pp: segment.segment_images(
                    model, paths, Path(tmp) / pp, postprocess=pp, batch=args.batch, quiet=True
                ),
                args.repeat,
            )
    base = t["model only"]
    for name, v in t.items():
        print(f"{name:36s} {v / len(paths):.3f} s/image  {len(paths) / v:5.2f} images/s  "
              f"{v / base:.2f}x the model")  # fmt: skip
    code = "import time; t=time.perf_counter(); import torch; print(time.perf_counter()-t)"
    imported = float(subprocess.check_output([sys.executable, "-c", code]).decode())
    print(f"import torch in a fresh process: {imported:.2f} s")


if __name__ == "__main__":
    main()
