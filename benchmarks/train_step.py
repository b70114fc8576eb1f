"""Cost of one MRIFE training step against one segmentation-branch step.

The paper's design runs three encoders (segmentation, student, teacher: the teacher
forward only) where the segmentation branch runs one, about 2.3x the arithmetic of a
step. This script times both on one batch of the chosen profile (median of --repeats
steps after two warm-up steps) and splits the MRIFE step into masking, forward, the
auxiliary losses (MFM and SFCE, forward), and backward + optimizer + EMA.

    python benchmarks/train_step.py --profile cpu [--repeats 10]

Prints a markdown table. Wall-clock seconds on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from mrife.config import load_profile
from mrife.losses import reconstruction_loss, sfce_loss
from mrife.models import build_model
from mrife.train import build_loaders, build_splits


def mrife_step(model, opt, images, masks) -> dict[str, float]:
    """One MRIFE step (``model.training_losses`` taken apart); seconds spent in each stage."""
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


def seg_step(model, opt, images, masks) -> float:
    tic = time.perf_counter()
    loss = F.cross_entropy(model(images), masks)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    cfg = load_profile(args.profile)
    batch = next(iter(build_loaders(cfg, build_splits(cfg))["train"]))
    images, masks = batch["image"], batch["mask"]
    torch.manual_seed(0)
    models = {name: build_model(load_profile(args.profile, [f"model.name={name}"])).train()
              for name in ("mrife", "segbranch")}
    opts = {n: torch.optim.SGD(m.trainable_parameters(), lr=1e-3, momentum=0.9) for n, m in models.items()}

    stages, seg = [], []
    for i in range(args.repeats + 2):  # interleaved, so that both see the same machine load
        s = mrife_step(models["mrife"], opts["mrife"], images, masks)
        g = seg_step(models["segbranch"], opts["segbranch"], images, masks)
        if i >= 2:
            stages.append(s)
            seg.append(g)
    med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    total = statistics.median(sum(s.values()) for s in stages)
    seg_med = statistics.median(seg)

    print(f"profile {args.profile}: batch {tuple(images.shape)}, backbone {cfg.model.backbone}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; median of {args.repeats} steps\n")
    print("| step | median ms | share of the MRIFE step |")
    print("|---|---:|---:|")
    for k, v in med.items():
        print(f"| MRIFE: {k.replace('_', ' ')} | {v * 1e3:.1f} | {v / total:.1%} |")
    print(f"| MRIFE step | {total * 1e3:.1f} | 100% |")
    print(f"| segmentation-branch step | {seg_med * 1e3:.1f} | |")
    print(f"\nMRIFE / segmentation-branch step time: {total / seg_med:.2f}x (aim: <= 2.5x)")
    share = (med["masking"] + med["aux_losses"]) / total
    print(f"masking + auxiliary losses (forward): {share:.1%} of the MRIFE step (aim: < 5%)")


if __name__ == "__main__":
    main()
