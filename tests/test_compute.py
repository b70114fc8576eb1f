"""Device, threads, precision and memory format of a run (mrife.compute), and what the
loop records of MRIFE's loss terms."""

import pytest
import torch

from mrife.compute import Compute, native_bf16, resolve_device, resolve_precision
from mrife.config import load_profile
from mrife.loaders import build_loaders, build_splits
from mrife.models import build_model
from mrife.models.mrife import GRADIENT_SHARE_EVERY


@pytest.fixture(scope="module")
def batch():
    cfg = load_profile("smoke")
    loader = build_loaders(cfg, build_splits(cfg, progress=False))["train"]
    return next(b for b in loader if (b["mask"] == 1).any())


def test_precision_names_and_devices():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="train.precision must be one of"):
        resolve_precision("fp8", cpu)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")


def test_threads_are_applied_and_checked():
    before = torch.get_num_threads()
    try:
        Compute.from_config(load_profile("smoke", ["train.threads=1"]).train)
        assert torch.get_num_threads() == 1, "train.threads=1 should set one thread"
        with pytest.raises(ValueError, match="train.threads"):
            Compute.from_config(load_profile("smoke", ["train.threads=-1"]).train)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("precision, channels_last", [("fp32", True), ("bf16", False), ("bf16", True)])
def test_a_training_step_in_each_precision_and_format_is_close_to_fp32(batch, precision, channels_last):
    def step(compute):
        torch.manual_seed(0)
        model = build_model(load_profile("smoke")).to(memory_format=compute.memory_format).train()
        for m in model.modules():  # dropout draws its mask in memory order: another format, other pixels
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        images, masks = compute.inputs(batch)
        with compute.autocast():
            terms = model.training_losses(images, masks, 1, torch.Generator().manual_seed(0))
        terms["loss"].backward()
        return terms, torch.cat([p.grad.flatten() for p in model.trainable_parameters() if p.grad is not None])

    ref, ref_grad = step(Compute(torch.device("cpu")))
    got, grad = step(Compute(torch.device("cpu"), precision, channels_last))
    tol = 0.05 if precision == "bf16" else 1e-4  # bf16 keeps 8 bits of mantissa
    for name in ("ce", "reconst"):
        assert got[name].item() == pytest.approx(ref[name].item(), rel=tol), f"{precision}: {name} far from fp32"
    cos = torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0)  # over every trainable parameter
    assert cos > (0.95 if precision == "bf16" else 0.9999), f"{precision}: gradient direction far from fp32 ({cos})"


def test_gradient_shares_are_measured_every_few_steps_and_sum_to_one(batch):
    torch.manual_seed(0)
    model = build_model(load_profile("smoke")).train()
    images, masks = batch["image"], batch["mask"]
    torch.manual_seed(1)  # the same dropout draws in both calls
    measured = model.training_losses(images, masks, 0, torch.Generator().manual_seed(0))
    shares = [measured[f"share_{k}"].item() for k in ("reconst", "cons", "ce")]
    assert sum(shares) == pytest.approx(1.0) and all(s >= 0 for s in shares), f"shares {shares}"
    assert shares[1] > 0 and shares[2] > 0, "SFCE and cross-entropy both reach the student (fuse_train=student)"
    torch.manual_seed(1)
    skipped = model.training_losses(images, masks, 1 if GRADIENT_SHARE_EVERY > 1 else 0,
                                    torch.Generator().manual_seed(0))
    assert GRADIENT_SHARE_EVERY == 1 or "share_ce" not in skipped, "shares are measured every few steps only"
    torch.testing.assert_close(measured["loss"], skipped["loss"], msg="measuring shares must not change the loss")
