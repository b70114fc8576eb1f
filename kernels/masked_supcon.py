"""``masked_supcon``: the SFCE term of one direction of an image pair (paper Eq. 4-6).

The public function checks its inputs, splits the masked positions by class and hands
them to one of three backends:

- ``"triton"``: the fused kernel of ``masked_supcon_triton.py``. CUDA tensors, or CPU
  tensors under Triton's interpreter (``TRITON_INTERPRET=1`` set before the kernels are
  first imported: how the tests run it).
- ``"torch"``: the eager reference :func:`mrife.kernels.supervised_contrastive` on the
  gathered rows. Holds ``N x N`` and ``N x M`` buffers.
- ``"torch-chunked"``: the kernel's algorithm tiled with PyTorch ops
  (``masked_supcon_chunked.py``): bounded memory on CPU.

``"auto"`` picks by the tensors' device and the number of rows: on CUDA ``torch`` up to
:data:`EAGER_ROWS` rows in the contrast set and ``triton`` above; on CPU ``triton`` when
the interpreter is on, else ``torch``. On the one GPU measured (an NVIDIA H200, torch
2.11, Triton 3.6; ``book/data/kernel_bench_cuda.json``) the eager reference was faster
than the kernel at every size benchmarked, 2.2x at 2,048 rows and 14.5x at 32,768, so the
kernel is the choice only where the reference's ``(N + M)^2`` buffers grow large.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from .masked_supcon_chunked import chunked_supcon
from .reference import gather_rows, supervised_contrastive

BACKENDS = ("auto", "triton", "torch", "torch-chunked")
# Rows (N + M) up to which "auto" runs the eager reference on CUDA: its buffers then take
# about 2.3 GiB (9 bytes per pair of rows in fp32, as measured on the H200).
EAGER_ROWS = 16384
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def masked_supcon(
    feat_s: Tensor,
    idx_s: Tensor,
    lab_s: Tensor,
    feat_t: Tensor,
    idx_t: Tensor,
    lab_t: Tensor,
    temperature: float = 0.07,
    backend: str = "auto",
) -> Tensor:
    """Supervised contrastive loss over the masked rows of a student and a teacher map.

    The contrast set is the union of the student rows ``feat_s[idx_s]`` and the teacher
    rows ``feat_t[idx_t]`` (a row is the ``C`` channels at one position), each
    L2-normalized; its class-1 rows are the anchors and positives, its class-0 rows the
    negatives. The value equals ``supervised_contrastive(pos, neg, temperature)`` on that
    union: ``sum_i -(1/N) sum_{j != i} log(e^{s_ij} / (e^{s_ij} + sum_k e^{s_ik}))`` with
    ``s = cos / temperature``.

    Args:
        feat_s: ``[B, C, h, w]`` student feature map; the only input that gets a gradient.
        idx_s: ``[n_s]`` int64 flat positions into ``B*h*w`` (``b*h*w + row*w + col``);
            repeated positions count once each (and their gradients add up).
        lab_s: ``[n_s]`` class of each student row: 1 (edge) or 0 (background).
        feat_t: ``[B, C, h, w]`` teacher feature map, treated as a constant.
        idx_t, lab_t: the same for the teacher rows.
        temperature: tau > 0.
        backend: one of ``BACKENDS`` (see the module docstring).

    Returns:
        A scalar, float32 (float64 for float64 inputs on the torch backends); 0 with a
        zero gradient for ``feat_s`` when the union has fewer than 2 class-1 rows or no
        class-0 row.
    """
    _check_inputs(feat_s, idx_s, lab_s, feat_t, idx_t, lab_t, temperature)
    backend = _choose_backend(backend, feat_s.is_cuda, rows=idx_s.numel() + idx_t.numel())
    feat_t = feat_t.detach()
    if backend == "torch":
        rows = torch.cat([gather_rows(feat_s, idx_s), gather_rows(feat_t, idx_t)])
        lab = torch.cat([lab_s, lab_t])
        return supervised_contrastive(rows[lab == 1], rows[lab == 0], temperature)

    is_pos_s, is_pos_t = lab_s == 1, lab_t == 1
    # Rows of each class, student rows first: [N] and [M] flat positions.
    p_idx = torch.cat([idx_s[is_pos_s], idx_t[is_pos_t]])
    q_idx = torch.cat([idx_s[~is_pos_s], idx_t[~is_pos_t]])
    if p_idx.shape[0] < 2 or q_idx.shape[0] == 0:
        return (feat_s.sum() * 0.0).to(torch.promote_types(feat_s.dtype, torch.float32))
    if backend == "torch-chunked":
        # One gather per map, so that backward builds one map-sized gradient, not one per class.
        rows_s, rows_t = gather_rows(feat_s, idx_s), gather_rows(feat_t, idx_t)  # [n_s, C], [n_t, C]
        pos = torch.cat([rows_s[is_pos_s], rows_t[is_pos_t]])  # [N, C]
        neg = torch.cat([rows_s[~is_pos_s], rows_t[~is_pos_t]])  # [M, C]
        return chunked_supcon(pos, neg, temperature)

    from .masked_supcon_triton import MaskedSupConTriton

    if feat_s.dtype not in TRITON_DTYPES:
        raise TypeError(f"backend='triton' takes {TRITON_DTYPES} feature maps, got {feat_s.dtype}; "
                        "cast the maps or use backend='torch-chunked'")
    n_ps, n_qs = int(is_pos_s.sum()), int((~is_pos_s).sum())
    return MaskedSupConTriton.apply(feat_s, feat_t, p_idx.contiguous(), n_ps, q_idx.contiguous(), n_qs,
                                    float(temperature))


def _choose_backend(backend: str, on_cuda: bool, rows: int) -> str:
    """Resolve ``"auto"`` by device and ``rows`` (the contrast set's), and refuse a Triton
    run that cannot happen."""
    if backend not in BACKENDS:
        raise ValueError(f"masked_supcon: unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"  # read per call, not at import
    if backend == "auto":
        if on_cuda:
            return "torch" if rows <= EAGER_ROWS else "triton"
        return "triton" if interpreting else "torch"
    if backend == "triton" and not on_cuda:
        if not interpreting:
            raise RuntimeError("masked_supcon: backend='triton' on CPU tensors runs only under Triton's "
                               "interpreter; set TRITON_INTERPRET=1 before mrife.kernels runs its first "
                               "Triton call, or use backend='torch-chunked'")
        from .masked_supcon_triton import is_interpreted

        if not is_interpreted():
            raise RuntimeError("masked_supcon: TRITON_INTERPRET=1 was set after the Triton kernels were "
                               "built for the GPU; set it before the first backend='triton' call")
    return backend


def _check_inputs(feat_s, idx_s, lab_s, feat_t, idx_t, lab_t, temperature) -> None:
    """Shapes, dtypes, devices and index ranges, each error naming the bad value."""
    if feat_s.dim() != 4 or feat_t.shape != feat_s.shape:
        raise ValueError(f"masked_supcon: feat_s and feat_t must both be [B, C, h, w] of one shape, got "
                         f"{tuple(feat_s.shape)} and {tuple(feat_t.shape)}")
    if feat_t.dtype != feat_s.dtype or feat_t.device != feat_s.device:
        raise ValueError(f"masked_supcon: feat_t is {feat_t.dtype} on {feat_t.device} but feat_s is "
                         f"{feat_s.dtype} on {feat_s.device}; give both maps one dtype and device")
    if not temperature > 0:
        raise ValueError(f"masked_supcon: temperature must be > 0, got {temperature}")
    B, _, h, w = feat_s.shape
    for name, idx, lab in (("idx_s", idx_s, lab_s), ("idx_t", idx_t, lab_t)):
        if idx.dtype != torch.int64 or idx.dim() != 1 or idx.device != feat_s.device:
            raise ValueError(f"masked_supcon: {name} must be a 1-D int64 tensor on {feat_s.device}, got "
                             f"{idx.dtype} {tuple(idx.shape)} on {idx.device}")
        if lab.shape != idx.shape or lab.device != feat_s.device:
            raise ValueError(f"masked_supcon: the labels of {name} must be {tuple(idx.shape)} on "
                             f"{feat_s.device}, got {tuple(lab.shape)} on {lab.device}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= B * h * w):
            raise IndexError(f"masked_supcon: {name} holds positions in [{int(idx.min())}, {int(idx.max())}] "
                             f"but the maps have B*h*w = {B * h * w} positions")
        if lab.numel() and not bool(((lab == 0) | (lab == 1)).all()):
            raise ValueError(f"masked_supcon: the labels of {name} must be 0 or 1, got values "
                             f"{torch.unique(lab).tolist()}")
