"""Cost of one training step: MRIFE against its segmentation branch, in each precision.

The paper's design runs three encoders (segmentation, student, teacher: the teacher
forward only) where the segmentation branch runs one. This script times one training
step of both models on one batch of the chosen profile (median of --repeats steps after
two warm-up steps, the two models interleaved so that both see the same machine load):

- in fp32, bf16 autocast, and each of them with channels-last memory (``train.precision``,
  ``train.channels_last``), with the arithmetic rate achieved (GFLOP/s, from torch's FLOP
  counter over one forward + backward);
- the MRIFE step of fp32 taken apart: masking, forward, auxiliary losses (MFM and SFCE,
  forward), backward + optimizer + EMA.

    python benchmarks/train_step.py --profile cpu [--repeats 10] [--threads N]

Prints markdown tables. Wall-clock milliseconds on whatever machine runs it; the ratios
are the numbers to compare across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mrife.compute import Compute, cores, native_bf16, processor
from mrife.config import load_profile
from mrife.loaders import build_loaders, build_splits
from mrife.losses import reconstruction_loss, sfce_loss
from mrife.models import build_model

VARIANTS = {"fp32": ("fp32", False), "fp32 + channels-last": ("fp32", True),
            "bf16": ("bf16", False), "bf16 + channels-last": ("bf16", True)}


def step(model, opt, compute: Compute, images, masks) -> float:
    """One training step through the training contract; seconds."""
    tic = time.perf_counter()
    with compute.autocast():
        loss = model.training_losses(images, masks, 1, torch.Generator().manual_seed(0))["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    model.after_step()
    return time.perf_counter() - tic


def flops(model, compute: Compute, images, masks) -> float:
    """Floating-point operations of one forward + backward (torch's counter)."""
    with FlopCounterMode(display=False) as counter:
        with compute.autocast():
            loss = model.training_losses(images, masks, 1, torch.Generator().manual_seed(0))["loss"]
        loss.backward()
    return counter.get_total_flops()


def mrife_stages(model, opt, images, masks) -> dict[str, float]:
    """One fp32 MRIFE step (``training_losses`` taken apart); seconds spent in each stage."""
    t = [time.perf_counter()]
    masked = model.masker(images, masks)
    t.append(time.perf_counter())
    out = model(images, masked.images)
    ce = F.cross_entropy(out.logits, masks)
    t.append(time.perf_counter())
    rec = reconstruction_loss(out.student, out.teacher, torch.cat([masked.idx_pos, masked.idx_neg]))
    cons = sfce_loss(out.student, out.teacher, masked.idx_pos, masked.idx_neg, model.temperature)
    t.append(time.perf_counter())
    opt.zero_grad(set_to_none=True)
    w = model.weights
    (w.alpha * rec + w.beta * cons + w.gamma * ce).backward()
    opt.step()
    model.after_step()
    t.append(time.perf_counter())
    names = ("masking", "forward", "aux_losses", "backward_step_ema")
    return {n: b - a for n, a, b in zip(names, t, t[1:])}


def build(profile: str, compute: Compute) -> tuple[dict, dict]:
    torch.manual_seed(0)
    models = {name: build_model(load_profile(profile, [f"model.name={name}"]))
              .to(memory_format=compute.memory_format).train() for name in ("mrife", "segbranch")}
    opts = {n: torch.optim.SGD(m.trainable_parameters(), lr=1e-3, momentum=0.9) for n, m in models.items()}
    return models, opts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=cores())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_profile(args.profile)
    batch = next(iter(build_loaders(cfg, build_splits(cfg, progress=False))["train"]))
    cpu = torch.device("cpu")
    print(f"profile {args.profile}: batch {tuple(batch['image'].shape)}, backbone {cfg.model.backbone}, "
          f"{torch.get_num_threads()} threads, {processor()}, {os.cpu_count()} cores, "
          f"native bf16: {'yes' if native_bf16(cpu) else 'no (emulated)'}; median of {args.repeats} steps\n")

    print("| precision and memory format | MRIFE ms | seg. branch ms | MRIFE / seg. branch | MRIFE GFLOP/s "
          "| seg. branch GFLOP/s | MRIFE speed-up over fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    fp32_ms = None
    for label, (precision, channels_last) in VARIANTS.items():
        compute = Compute(cpu, precision, channels_last)
        # Emulated bf16 runs about 20 times slower: one step after one warm-up shows it.
        warmup, repeats = (2, args.repeats) if precision == "fp32" or native_bf16(cpu) else (1, 1)
        images, masks = compute.inputs(batch)
        models, opts = build(args.profile, compute)
        work = {n: flops(m, compute, images, masks) for n, m in models.items()}
        times = {n: [] for n in models}
        for i in range(repeats + warmup):
            for n in models:
                seconds = step(models[n], opts[n], compute, images, masks)
                if i >= warmup:
                    times[n].append(seconds)
        label += "" if repeats == args.repeats else " (emulated: 1 step)"
        med = {n: statistics.median(t) for n, t in times.items()}
        fp32_ms = fp32_ms or med["mrife"]
        print(f"| {label} | {med['mrife'] * 1e3:.1f} | {med['segbranch'] * 1e3:.1f} | "
              f"{med['mrife'] / med['segbranch']:.2f}x | {work['mrife'] / med['mrife'] / 1e9:.1f} | "
              f"{work['segbranch'] / med['segbranch'] / 1e9:.1f} | {fp32_ms / med['mrife']:.2f}x |")
    print(f"\narithmetic per step (forward + backward): MRIFE {work['mrife'] / 1e9:.1f} GFLOP, segmentation "
          f"branch {work['segbranch'] / 1e9:.1f} GFLOP, ratio {work['mrife'] / work['segbranch']:.2f}")

    models, opts = build(args.profile, Compute(cpu))
    images, masks = batch["image"], batch["mask"]
    stages = [mrife_stages(models["mrife"], opts["mrife"], images, masks) for _ in range(args.repeats + 2)][2:]
    med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    total = sum(med.values())
    print("\n| fp32 MRIFE step, by stage | median ms | share |")
    print("|---|---:|---:|")
    for k, v in med.items():
        print(f"| {k.replace('_', ' ')} | {v * 1e3:.1f} | {v / total:.1%} |")
    print(f"\nmasking + auxiliary losses (forward): {(med['masking'] + med['aux_losses']) / total:.1%} of the MRIFE step")


if __name__ == "__main__":
    main()
