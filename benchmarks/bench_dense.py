"""The dense U-Net against the report's CNN: speed side by side, size, MACs, receptive field.

Run by hand (results in ``docs/benchmarks.md``, section ``dense``)::

    python benchmarks/bench_dense.py [--unet runs/x/best.pt] [--device cuda] [--repeat 3]

One run measures, on the same 640 x 450 image (random pixels: timings do not depend on
content), with 1 and 2 torch threads on CPU:

* the report's CNN (the shipped ``report`` weights) at stride 4 and exact (stride 1, once);
* the U-Net, exact (it is dense by construction), and with test-time augmentation
  (``--tta flips`` and ``d4``: 4 and 8 passes, through ``predict.model_maps``);
* the U-Net's training step (batch 8, 128 x 128 crops, AdamW): tiles per second;
* on CUDA: batched U-Net inference in images per second (batch 16, bf16 autocast and not).

It also prints the U-Net's parameters, multiply-accumulates per megapixel (counted by conv
hooks) and its empirical receptive field (the input pixels with a non-zero gradient of the
centre output).
"""

from __future__ import annotations

import argparse
import time

import torch

from blursynth_train.checkpoint import load_model
from blursynth_train.models import UNet, UNetConfig
from blursynth_train.predict import model_maps
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


def macs_per_megapixel(model: UNet) -> float:
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


def receptive_field(model: UNet, size: int = 512) -> int:
    """Side of the square of input pixels that reach the centre output (empirical)."""
    model = model.eval()
    x = torch.full((1, 3, size, size), 128.0, requires_grad=True)
    mean, std = model.mean, model.std

    # differentiate through the float path (the uint8 input has no gradient)
    z = (x / 255.0 - mean) / std
    feats = model.stem(z)
    skips = []
    for k, block in enumerate(model.down):
        feats = block(feats if k == 0 else torch.nn.functional.max_pool2d(feats, 2))
        skips.append(feats)
    feats = skips.pop()
    for block in model.up:
        skip = skips.pop()
        feats = torch.nn.functional.interpolate(feats, size=skip.shape[-2:], mode="bilinear")
        feats = block(torch.cat([feats, skip], 1))
    out = model.head(feats)
    out[0, :, out.shape[-2] // 2, out.shape[-1] // 2].sum().backward()
    reach = (x.grad[0].abs().sum(0) > 0).nonzero()
    return int((reach[:, 0].max() - reach[:, 0].min() + 1).item())


def train_step_time(config: UNetConfig, device, repeat: int) -> float:
    """Seconds per AdamW step on 8 random 128 x 128 crops (after one warm-up step)."""
    model = UNet(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randint(0, 256, (8, 3, 128, 128), dtype=torch.uint8, device=device)
    y = torch.randint(0, 2, (8, 128, 128), device=device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    return timed(step, device, repeat)


@torch.no_grad()
def batched_inference(model: UNet, batch: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast(batch.device.type, torch.bfloat16, enabled=bf16):
        return torch.softmax(model(batch).float(), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unet", help="U-Net checkpoint (default: random weights, same speed).")
    ap.add_argument(
        "--report", default="report", help="Report CNN weights (default: the shipped ones)."
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    unet = load_model(args.unet, device)[0] if args.unet else UNet(UNetConfig()).to(device).eval()
    report = load_model(resolve_weights(args.report), device)[0]
    image = torch.randint(0, 256, (3, H, W), dtype=torch.uint8, device=device)
    cpu_unet = UNet(unet.config).eval()
    cpu_unet.load_state_dict(unet.state_dict())
    print(
        f"U-Net {unet.config}: {unet.count_parameters():,} parameters, "
        f"{macs_per_megapixel(cpu_unet) / 1e9:.2f} GMAC per megapixel, "
        f"receptive field {receptive_field(cpu_unet)} px"
    )
    threads = (1, 2) if device.type == "cpu" else (torch.get_num_threads(),)
    for n in threads:
        torch.set_num_threads(n)
        t_cnn4 = timed(lambda: report.dense_probs(image, stride=4), device, args.repeat)
        t_unet = timed(lambda: unet.dense_probs(image), device, args.repeat)
        print(
            f"threads {n}: report CNN stride 4 {t_cnn4:.2f} s, U-Net exact {t_unet:.3f} s "
            f"per 640x450 image: U-Net is {t_cnn4 / t_unet:.1f}x faster"
        )
        if n == threads[-1]:
            pixels = image.permute(1, 2, 0).cpu().numpy()
            for tta in ("flips", "d4"):
                t = timed(
                    lambda tta=tta, px=pixels: model_maps(unet, [px], tta=tta), device, args.repeat
                )
                print(f"threads {n}: U-Net --tta {tta} {t:.3f} s ({t / t_unet:.1f}x exact)")
        if n == threads[-1] and device.type == "cpu":
            t_cnn1 = timed(lambda: report.dense_probs(image, stride=1), device, 1)
            print(
                f"threads {n}: report CNN exact {t_cnn1:.1f} s ({t_cnn1 / t_unet:.0f}x the U-Net)"
            )
        t_step = train_step_time(unet.config, device, args.repeat)
        print(
            f"threads {n}: U-Net training step (8 x 128^2) {t_step:.3f} s = "
            f"{8 / t_step:.1f} crops/s"
        )
    if device.type == "cuda":
        batch = torch.randint(0, 256, (16, 3, H, W), dtype=torch.uint8, device=device)
        for bf16 in (False, True):
            t = timed(lambda bf16=bf16: batched_inference(unet, batch, bf16), device, args.repeat)
            print(f"cuda batch 16, bf16={bf16}: U-Net {16 / t:.0f} images/s (640x450)")


if __name__ == "__main__":
    main()
