"""Random cases for checking the SFCE kernel against its float64 reference, with the
tolerances each precision is held to: shared by the CPU tests (``tests/test_kernel.py``,
under Triton's interpreter), the GPU suite (``tests/test_cuda.py``) and chapter 11's
live check. Importing this module imports ``mrife.kernels``: the importer decides first
whether Triton interprets or compiles (``TRITON_INTERPRET``)."""

from __future__ import annotations

import math

import torch

from .masked_supcon import masked_supcon
from .reference import gather_rows, supervised_contrastive

# (atol, rtol) against the float64 reference evaluated on the same (rounded) inputs, atol
# relative to the largest |value| or |gradient| of the case.
TOLERANCES = {
    # fp32 accumulation: scores s = cos / 0.07 reach 14, so a few ulps of s (1e-6) carry
    # through exp/log into sums of a few dozen terms.
    torch.float32: (2e-5, 1e-4),
    # fp16 maps: products exact in fp32, but the gradient is rounded back to fp16 (2^-11).
    torch.float16: (2e-3, 4e-3),
    # bf16 maps (GPU only): 8 bits of mantissa (2^-8), and the gradient rounded back to bf16.
    torch.bfloat16: (1.6e-2, 3.2e-2),
}


def make_case(n_pos: int, n_neg: int, channels: int, seed: int, repeats: int = 0, dtype=torch.float32):
    """Maps ``[2, C, 4, 5]`` and ``n_pos`` class-1 / ``n_neg`` class-0 rows of the union,
    split at random between the student and the teacher; ``repeats`` student rows
    repeat an earlier student position (with either label)."""
    g = torch.Generator().manual_seed(seed)
    B, h, w = 2, 4, 5
    feat_s = torch.randn(B, channels, h, w, generator=g).to(dtype)
    feat_t = torch.randn(B, channels, h, w, generator=g).to(dtype)
    lab = torch.cat([torch.ones(n_pos, dtype=torch.int64), torch.zeros(n_neg, dtype=torch.int64)])
    lab = lab[torch.randperm(lab.numel(), generator=g)]
    idx = torch.randint(0, B * h * w, (lab.numel(),), generator=g)
    in_s = torch.rand(lab.numel(), generator=g) < 0.5
    idx_s, lab_s, idx_t, lab_t = idx[in_s], lab[in_s], idx[~in_s], lab[~in_s]
    if repeats and idx_s.numel():
        extra = torch.randint(0, idx_s.numel(), (repeats,), generator=g)
        idx_s = torch.cat([idx_s, idx_s[extra]])
        lab_s = torch.cat([lab_s, torch.randint(0, 2, (repeats,), generator=g)])
    return feat_s, idx_s, lab_s, feat_t, idx_t, lab_t


def reference(case, temperature=0.07):
    """Value and gradient of ``feat_s`` in float64, from the eager reference."""
    feat_s, idx_s, lab_s, feat_t, idx_t, lab_t = case
    x = feat_s.double().requires_grad_()
    rows = torch.cat([gather_rows(x, idx_s), gather_rows(feat_t.double(), idx_t)])
    lab = torch.cat([lab_s, lab_t])
    value = supervised_contrastive(rows[lab == 1], rows[lab == 0], temperature)
    (value * 0.7).backward()
    return value.detach(), x.grad


def run(case, backend, temperature=0.07):
    """Value and gradient of ``feat_s`` by ``masked_supcon`` (upstream gradient 0.7)."""
    feat_s, idx_s, lab_s, feat_t, idx_t, lab_t = case
    x = feat_s.clone().requires_grad_()
    t = feat_t.clone().requires_grad_()  # must get no gradient
    value = masked_supcon(x, idx_s, lab_s, t, idx_t, lab_t, temperature=temperature, backend=backend)
    (value * 0.7).backward()
    assert t.grad is None, f"{backend}: feat_t got a gradient; it must be treated as a constant"
    assert x.grad is not None and x.grad.shape == x.shape, f"{backend}: expected a {tuple(x.shape)} gradient"
    return value.detach(), x.grad


def assert_matches(got, want, dtype, what):
    (value, grad), (ref_value, ref_grad) = got, want
    atol, rtol = TOLERANCES[dtype]
    assert torch.isfinite(value) and bool(torch.isfinite(grad).all()), f"{what}: non-finite value or gradient"
    v_scale = max(abs(float(ref_value)), 1.0)
    assert math.isclose(float(value), float(ref_value), rel_tol=rtol, abs_tol=atol * v_scale), \
        f"{what}: value {float(value)!r}, expected {float(ref_value)!r}"
    g_scale = max(float(ref_grad.abs().max()), 1e-30)
    torch.testing.assert_close(grad.double(), ref_grad, atol=atol * g_scale, rtol=rtol,
                               msg=lambda m: f"{what}: gradient of feat_s differs from the float64 reference\n{m}")


SIZES = [(5, 33), (33, 5), (33, 33), (2, 1)]  # (N, M): not multiples of the 16/32/64 tiles
