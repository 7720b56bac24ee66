"""The dense models against the report's CNN: speed side by side, size, MACs.

Run by hand (results in ``docs/benchmarks.md``, section ``dense``)::

    python benchmarks/bench_dense.py [--lite bundled] [--unet unet] [--device cuda] [--repeat 3]

One run measures, on the same 640 x 450 image (random pixels: timings do not depend on
content), with 1 and 2 torch threads on CPU, every model through the same
:class:`~blursynth_train.predict.Predictor` that ``segment`` uses:

* the report's CNN (the shipped ``report`` weights) at stride 4 and exact (stride 1, once);
* the shipped U-Net (``unet``) and the liteunet (``bundled``: EfficientNet-Lite0 + U-Net
  decoder), both exact (dense by construction), the liteunet also with ``--tta flips``;
* each dense model's training step (batch 8 of its recipe's crops, AdamW): crops per second;
* on CUDA: batched inference in images per second (batch 16, bf16 autocast and not).

It also prints each dense model's parameters and multiply-accumulates per megapixel
(counted by conv hooks).
"""

from __future__ import annotations

import argparse
import time

import torch

from blursynth_train.checkpoint import load_model
from blursynth_train.models import create_model, parameter_groups
from blursynth_train.predict import Predictor
from blursynth_train.weights import resolve_weights

H, W = 450, 640


def timed(fn, device, repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def macs_per_megapixel(model: torch.nn.Module) -> float:
    """Conv multiply-accumulates for a 1024 x 1024 input, per megapixel."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * k * module.in_channels // module.groups

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        model(torch.zeros((1, 3, 1024, 1024), dtype=torch.uint8))
    for h in handles:
        h.remove()
    return total / (1024 * 1024 / 1e6)


def train_step_time(config, crop: int, device, repeat: int) -> float:
    """Seconds per AdamW step on 8 random ``crop`` x ``crop`` crops (after a warm-up step)."""
    model = create_model(config).to(device).train()
    opt = torch.optim.AdamW(parameter_groups(model, 1e-4))
    x = torch.randint(0, 256, (8, 3, crop, crop), dtype=torch.uint8, device=device)
    y = torch.randint(0, 2, (8, crop, crop), device=device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    return timed(step, device, repeat)


@torch.no_grad()
def batched_inference(model: torch.nn.Module, batch: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast(batch.device.type, torch.bfloat16, enabled=bf16):
        return torch.softmax(model(batch).float(), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lite", default="bundled", help="liteunet weights (default: bundled).")
    ap.add_argument("--unet", default="unet", help="U-Net weights (default: the shipped ones).")
    ap.add_argument("--report", default="report", help="Report CNN weights (shipped ones).")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    models = {
        name: load_model(resolve_weights(spec), device)[0]
        for name, spec in (("liteunet", args.lite), ("U-Net", args.unet), ("report", args.report))
    }
    for name in ("liteunet", "U-Net"):
        m = models[name]
        cpu = create_model(m.config).eval()
        print(
            f"{name} {m.config}: {m.count_parameters():,} parameters, "
            f"{macs_per_megapixel(cpu) / 1e9:.2f} GMAC per megapixel"
        )
    pixels = torch.randint(0, 256, (H, W, 3), dtype=torch.uint8).numpy()
    threads = (1, 2) if device.type == "cpu" else (torch.get_num_threads(),)
    for n in threads:
        torch.set_num_threads(n)
        t = {
            "report stride 4": timed(
                lambda: Predictor(models["report"], stride=4)([pixels]), device, args.repeat
            ),
            "U-Net": timed(lambda: Predictor(models["U-Net"])([pixels]), device, args.repeat),
            "liteunet": timed(lambda: Predictor(models["liteunet"])([pixels]), device, args.repeat),
        }
        if n == threads[-1]:
            t["liteunet --tta flips"] = timed(
                lambda: Predictor(models["liteunet"], tta="flips")([pixels]), device, args.repeat
            )
            if device.type == "cpu":
                t["report exact"] = timed(lambda: Predictor(models["report"])([pixels]), device, 1)
        cells = ", ".join(f"{k} {v:.3f} s ({v / t['liteunet']:.2f}x)" for k, v in t.items())
        print(f"threads {n}, per 640x450 image (ratio to liteunet): {cells}")
        for name, crop in (("liteunet", 224), ("U-Net", 128)):
            t_step = train_step_time(models[name].config, crop, device, args.repeat)
            print(
                f"threads {n}: {name} training step (8 x {crop}^2) {t_step:.3f} s = "
                f"{8 / t_step:.1f} crops/s"
            )
    if device.type == "cuda":
        batch = torch.randint(0, 256, (16, 3, H, W), dtype=torch.uint8, device=device)
        for name in ("liteunet", "U-Net"):
            for bf16 in (False, True):
                t = timed(
                    lambda m=models[name], b=bf16: batched_inference(m, batch, b),
                    device,
                    args.repeat,
                )
                print(f"cuda batch 16, bf16={bf16}: {name} {16 / t:.0f} images/s (640x450)")


if __name__ == "__main__":
    main()
