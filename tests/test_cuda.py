"""The GPU suite, for a machine with an NVIDIA GPU (skipped, with the reason, elsewhere):

    pytest -m cuda tests/test_cuda.py

The Triton SFCE kernel compiled for the device, forward and backward against the float64
reference in fp32, bf16 and fp16, at the CPU tests' sizes and at N = M = 16k; one MRIFE
training step at the ``paper`` profile (ResNet101, 512 x 512, batch 4) in fp32 and under
bf16 and fp16 autocast (fp16: the steps its gradient scaler skips, then one that moves);
the kernel benchmark's GPU part; with two GPUs, two processes (NCCL) against one. Run it
as its own pytest session (the command above): the CPU kernel tests make Triton
interpret, these need it compiled. ``benchmarks/gpu.sh`` runs it with the benchmarks.
"""

import math
import subprocess
import sys

import pytest
import torch

CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not CUDA, reason="no CUDA device: run `pytest -m cuda tests/test_cuda.py` "
                                                  "on a machine with an NVIDIA GPU")]
if CUDA:  # compiled Triton: imported only where a GPU is, so the CPU suite keeps its interpreter
    from mrife.kernels.cases import SIZES, TOLERANCES, assert_matches, make_case, reference, run

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def on_device(case, dtype):
    feat_s, idx_s, lab_s, feat_t, idx_t, lab_t = case
    return (feat_s.to("cuda", dtype), idx_s.cuda(), lab_s.cuda(), feat_t.to("cuda", dtype), idx_t.cuda(), lab_t.cuda())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_pos,n_neg", SIZES if CUDA else [])
def test_kernel_matches_float64_reference_on_device(dtype, n_pos, n_neg):
    case = on_device(make_case(n_pos, n_neg, channels=37, seed=n_pos * 100 + n_neg), dtype)
    assert_matches(run(case, "triton"), reference(case), dtype, f"triton on cuda {dtype} N={n_pos} M={n_neg}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_at_sixteen_thousand_rows(dtype):
    from mrife.kernels.bench import make_inputs

    feat_s, *rest = make_inputs(16384, 16384, device="cuda", dtype=dtype)
    case = (feat_s.detach(), *rest)
    assert_matches(run(case, "triton"), reference(case), dtype, f"triton on cuda {dtype} N=M=16384")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_one_mrife_step_at_the_paper_profile(precision):
    from mrife.compute import Compute
    from mrife.config import load_profile
    from mrife.models import build_model
    from mrife.train import build_optimizer, train_step

    cfg = load_profile("paper", ["model.pretrained=false", f"train.precision={precision}"])
    compute = Compute.from_config(cfg.train)
    torch.manual_seed(0)
    model = build_model(cfg).to(compute.device).train()
    optimization = (*build_optimizer(cfg, model, steps_per_epoch=10), compute.grad_scaler())
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(4, 512, 512, dtype=torch.int64)
    masks[:, 128:384, 100:300] = 1
    batch = {"image": torch.randn(4, 3, 512, 512, generator=g), "mask": masks}
    before = [p.detach().clone() for p in model.trainable_parameters()]
    scaler = optimization[2]
    # fp16: the scaler skips a step whose scaled gradients overflow and halves its scale
    # (from 2^16; on an H200 the first step overflows), so it may take a few steps to move.
    for steps in range(1, 9 if precision == "fp16" else 2):
        losses = train_step(model, batch, optimization, torch.Generator().manual_seed(0), compute)
        assert all(math.isfinite(float(v)) for v in losses.values()), losses
        changed = sum(not torch.equal(b, p) for b, p in zip(before, model.trainable_parameters()))
        if changed:
            break
    assert changed > len(before) // 2, f"{precision}: only {changed} of {len(before)} tensors moved in {steps} steps"
    if precision == "fp16":
        assert scaler.get_scale() == 2.0 ** (16 - (steps - 1)), "each skipped step halves the scale, no more"


def test_kernel_benchmark_runs_on_the_device():
    from mrife.kernels.bench import run_cuda

    rows = run_cuda([1024], repeats=2)
    assert {row["backend"] for row in rows} == {"triton", "torch", "torch.compile(torch)"}
    assert all(row["time_s"] > 0 and row["peak_extra_bytes"] >= 0 for row in rows)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpus_train_as_one_with_nccl(tmp_path):
    from test_distributed import ENV, TORCHRUN, assert_close, outcome, train_args

    on_gpu = ("train.device=cuda", "train.deterministic=true")
    subprocess.run([sys.executable, *train_args(tmp_path / "one", *on_gpu)], check=True, env=ENV)
    subprocess.run([*TORCHRUN, *train_args(tmp_path / "two", *on_gpu)], check=True, env=ENV)
    # wider than on the CPU: cuDNN's convolutions may use TF32, whose rounding the two runs meet in another order
    assert_close(outcome(tmp_path / "two"), outcome(tmp_path / "one"), rel_tol=1e-2)
