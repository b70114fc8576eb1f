"""The fused SFCE kernel in Triton: masked-row gather + supervised contrastive loss.

Notation (paper Eq. 4-5, indicator corrected as in ``NOTES.md``). The contrast set is
the union of the student rows ``feat_s[idx_s]`` and the teacher rows ``feat_t[idx_t]``
of two ``[B, C, h, w]`` maps; ``x_u`` is one such row and ``z_u = x_u / max(|x_u|, eps)``.
``P`` are its class-1 rows (anchors and positives, ``N = |P|``), ``Q`` its class-0
rows (negatives, ``M = |Q|``), ``s_ij = z_i . z_j / tau``, and

    G_i   = log sum_{k in Q} exp(s_ik)                          (negatives' log-sum-exp)
    L     = (1/N) sum_{i in P} sum_{j in P, j != i} softplus(G_i - s_ij)

because ``-log(e^s / (e^s + e^G)) = softplus(G - s)``. Backward, with
``sigma_ij = sigmoid(s_ij - G_i)``, ``W_i = sum_{j != i} (1 - sigma_ij)`` and
``pi_ik = exp(s_ik - G_i)`` (the softmax over the negatives):

    dL/ds_ij = -(1 - sigma_ij) / N          (j in P, j != i)
    dL/ds_ik =  W_i pi_ik / N               (k in Q)

A student row gets gradient from every role it plays: as an anchor (its own row of
``s``), as a positive of every anchor (its column in the ``P x P`` block, through
``G_j`` of that anchor), as a negative of every anchor (its column of ``P x Q``).
With ``g_uv`` the gradient of ``L`` at the score ``s_uv`` summed over both orders,

    dL/dz_u = (1/tau) sum_v g_uv z_v ,      z_u . dL/dz_u = sum_v g_uv s_uv
    dL/dx_u = (dL/dz_u - z_u (z_u . dL/dz_u)) / |x_u|          (the normalization's Jacobian)

so the projection needs only the scalar ``sum_v g_uv s_uv``, which every output-column
block accumulates from the scores it recomputes anyway.

Three kernels, none of which writes an ``[N, C]`` gather or an ``N x M`` tile to memory:
``_fwd_kernel`` (per block of anchors: one pass over ``Q`` with an online log-sum-exp,
one pass over ``P``; saves ``G_i``, ``W_i`` and the per-anchor loss), ``_bwd_pos_kernel``
(student class-1 rows: anchor and positive roles) and ``_bwd_neg_kernel`` (student
class-0 rows: negative role). Both backward kernels scatter-add ``dL/dx`` into a
``[B, C, h, w]`` fp32 map with atomics, so repeated indices accumulate (on a GPU the
order of those additions, hence the last bits of the gradient, varies from run to run).

Precision: every sum accumulates in fp32. Scores of bf16/fp16 maps are tensor-core dots
of the stored values (their products are exact in fp32); fp32 maps use
``input_precision="ieee"`` (FMA units), since TF32 would round the inputs to 10 mantissa
bits, an error near 1e-2 on scores of size 1/tau.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

POISON: float | None = None  # fill value of the kernels' output buffers (tests: NaN)
EPS = tl.constexpr(1e-12)  # F.normalize's eps: rows shorter than this are divided by EPS, not |x|

# Block sizes the autotuner may pick on a GPU; `mrife.kernels.aot` compiles every one of
# them for sm_80 and sm_90a in fp32, bf16 and fp16 and reports registers and spills: all
# of these compile without a spill. All dims are >= 16 (tl.dot's minimum). The contraction
# dims (BLOCK_C for the scores, BLOCK_J for the gradient's g @ z) stay at 16: an fp32
# "ieee" dot runs on FMA units with whole K-strips of both operands in each thread's
# registers, and K = 32 spills in the backward kernels. Rejected for a few STL/LDL each:
# forward 64x64 at 8 warps and 32x64 at 4 warps (bf16/fp16, sm_80), 64x64 with 2 stages
# (fp32); backward 32x128 and 64x64 (U x D) at 8 warps (every dtype), 16x64, 16x32 and
# 32x32 at 4 warps (sm_90a).
FWD_CONFIGS = [
    triton.Config({"BLOCK_N": 32, "BLOCK_M": 32, "BLOCK_C": 16}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_N": 64, "BLOCK_M": 32, "BLOCK_C": 16}, num_warps=4, num_stages=1),
    triton.Config({"BLOCK_N": 64, "BLOCK_M": 64, "BLOCK_C": 16}, num_warps=4, num_stages=1),
]
BWD_CONFIGS = [
    triton.Config({"BLOCK_U": 16, "BLOCK_J": 16, "BLOCK_C": 16, "BLOCK_D": 64}, num_warps=8, num_stages=1),
    triton.Config({"BLOCK_U": 32, "BLOCK_J": 16, "BLOCK_C": 16, "BLOCK_D": 32}, num_warps=8, num_stages=1),
    triton.Config({"BLOCK_U": 32, "BLOCK_J": 16, "BLOCK_C": 16, "BLOCK_D": 64}, num_warps=8, num_stages=1),
    triton.Config({"BLOCK_U": 16, "BLOCK_J": 16, "BLOCK_C": 16, "BLOCK_D": 128}, num_warps=8, num_stages=1),
]


# Device helpers: where a row lives, loading a [rows, channels] tile, a tile of scores.


@triton.jit
def _row_ptrs(S, T, IDX, offs, n, n_from_s, HW, WIDTH, sb, sh, sw):
    """Pointers to the first channel of rows ``offs`` of a contrast class, and which rows
    exist. Rows ``< n_from_s`` live in the student map, the rest in the teacher map (both
    maps share their strides). The row at flat position p = b*h*w + r*w + c starts at
    b*stride_b + r*stride_h + c*stride_w: any layout works, e.g. channels_last."""
    valid = offs < n
    p = tl.load(IDX + offs, mask=valid, other=0)  # int64 flat positions
    b = p // HW
    rem = p % HW
    off = b * sb + (rem // WIDTH) * sh + (rem % WIDTH) * sw
    return tl.where(offs < n_from_s, S + off, T + off), valid


@triton.jit
def _load_rows(rows, valid, cols, C, sc):
    """The ``[len(rows), len(cols)]`` tile of features (channel stride ``sc``); 0 outside."""
    return tl.load(rows[:, None] + cols[None, :] * sc, mask=valid[:, None] & (cols < C)[None, :], other=0.0)


@triton.jit
def _inv_norm(rows, valid, C, sc, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """1 / max(|x|, eps) of a block of rows, accumulated in fp32 over channel chunks."""
    sq = tl.zeros([BLOCK_R], dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        x = _load_rows(rows, valid, c0 + tl.arange(0, BLOCK_C), C, sc).to(tl.float32)
        sq += tl.sum(x * x, axis=1)
    return 1.0 / tl.maximum(tl.sqrt(sq), EPS)


@triton.jit
def _scores(a_rows, a_valid, a_rn, b_rows, b_valid, C, sc, inv_tau,
            BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_C: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """s = cos(x_a, x_b) / tau for a [BLOCK_A, BLOCK_B] tile, normalizing on load: the raw
    dot product accumulates in fp32 over channel chunks (inputs keep their dtype, so bf16
    and fp16 use tensor cores), |x_b|^2 accumulates beside it from the same loads.
    Returns the scores and 1 / max(|x_b|, eps)."""
    dot = tl.zeros([BLOCK_A, BLOCK_B], dtype=tl.float32)
    sq_b = tl.zeros([BLOCK_B], dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)
        xa = _load_rows(a_rows, a_valid, cols, C, sc)
        xb = _load_rows(b_rows, b_valid, cols, C, sc)
        dot = tl.dot(xa, tl.trans(xb), dot, input_precision=DOT_PRECISION)
        xb32 = xb.to(tl.float32)
        sq_b += tl.sum(xb32 * xb32, axis=1)
    b_rn = 1.0 / tl.maximum(tl.sqrt(sq_b), EPS)
    return dot * (a_rn[:, None] * inv_tau) * b_rn[None, :], b_rn


@triton.jit
def _softplus(x):
    """log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)."""
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


# Forward


@triton.jit
def _fwd_kernel(
    S, T, P_IDX, Q_IDX, LSE, WSUM, LOSS_ROW,
    NP, NP_S, NQ, NQ_S, C, HW, WIDTH,
    sb, sc, sh, sw,
    inv_tau,
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """One program per BLOCK_N anchors (rows of P). Writes, per anchor i:
    LSE[i] = G_i, WSUM[i] = W_i = sum_{j != i} sigmoid(G_i - s_ij), and
    LOSS_ROW[i] = sum_{j != i} softplus(G_i - s_ij), so that L = sum(LOSS_ROW) / N."""
    offs_i = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    i_rows, i_ok = _row_ptrs(S, T, P_IDX, offs_i, NP, NP_S, HW, WIDTH, sb, sh, sw)
    rn_i = _inv_norm(i_rows, i_ok, C, sc, BLOCK_N, BLOCK_C)

    # Pass 1, negatives: online log-sum-exp. With running max m and sum l = sum e^(s - m),
    # a new tile with max m' = max(m, max_k s_ik) rescales l by e^(m - m') and adds its own
    # sum e^(s_ik - m'). Every tile holds >= 1 valid column, so m is finite after the first.
    m_i = tl.full([BLOCK_N], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_N], dtype=tl.float32)
    for k0 in range(0, NQ, BLOCK_M):
        offs_k = k0 + tl.arange(0, BLOCK_M)
        k_rows, k_ok = _row_ptrs(S, T, Q_IDX, offs_k, NQ, NQ_S, HW, WIDTH, sb, sh, sw)
        s, _ = _scores(i_rows, i_ok, rn_i, k_rows, k_ok,
                       C, sc, inv_tau, BLOCK_N, BLOCK_M, BLOCK_C, DOT_PRECISION)
        s = tl.where((offs_k < NQ)[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        l_i = l_i * tl.exp(m_i - m_new) + tl.sum(tl.exp(s - m_new[:, None]), axis=1)
        m_i = m_new
    lse_i = m_i + tl.log(l_i)

    # Pass 2, positives: -log(e^s / (e^s + e^G)) = softplus(G - s), stable for any tau;
    # 1 - sigmoid(s - G) = sigmoid(G - s) is what the backward needs per anchor (W_i).
    loss_i = tl.zeros([BLOCK_N], dtype=tl.float32)
    w_i = tl.zeros([BLOCK_N], dtype=tl.float32)
    for j0 in range(0, NP, BLOCK_M):
        offs_j = j0 + tl.arange(0, BLOCK_M)
        j_rows, j_ok = _row_ptrs(S, T, P_IDX, offs_j, NP, NP_S, HW, WIDTH, sb, sh, sw)
        s, _ = _scores(i_rows, i_ok, rn_i, j_rows, j_ok,
                       C, sc, inv_tau, BLOCK_N, BLOCK_M, BLOCK_C, DOT_PRECISION)
        keep = (offs_j < NP)[None, :] & (offs_j[None, :] != offs_i[:, None])  # j != i: Eq. 5's indicator
        d = lse_i[:, None] - s
        loss_i += tl.sum(tl.where(keep, _softplus(d), 0.0), axis=1)
        w_i += tl.sum(tl.where(keep, tl.sigmoid(d), 0.0), axis=1)

    ok = offs_i < NP
    tl.store(LSE + offs_i, lse_i, mask=ok)
    tl.store(WSUM + offs_i, w_i, mask=ok)
    tl.store(LOSS_ROW + offs_i, loss_i, mask=ok)


# Backward


@triton.jit
def _scatter_grad(GRAD, DLOSS, U_IDX, offs_u, n_u, u_rows, u_ok, rn_u, dz, gs, C, HW, sc, inv_tau, pid_d,
                  BLOCK_U: tl.constexpr, BLOCK_D: tl.constexpr):
    """dL/dx_u = (dz/tau - z_u * gs) / max(|x_u|, eps) on channel block pid_d, scaled by the
    upstream gradient and atomically added into the contiguous fp32 [B, C, h, w] GRAD (so
    repeated indices accumulate). When |x_u| <= eps, F.normalize divides by eps and the
    projection term is absent."""
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    x_u = _load_rows(u_rows, u_ok, cols, C, sc).to(tl.float32)
    z_u = x_u * rn_u[:, None]
    projected = (rn_u < 1.0 / EPS)[:, None]
    dx = rn_u[:, None] * (dz * inv_tau - tl.where(projected, z_u * gs[:, None], 0.0))
    dx = dx * tl.load(DLOSS).to(tl.float32)
    p = tl.load(U_IDX + offs_u, mask=offs_u < n_u, other=0)
    g_row = (p // HW) * C * HW + p % HW  # [B, C, h, w] contiguous: channel stride h*w
    mask = (offs_u < n_u)[:, None] & (cols < C)[None, :]
    tl.atomic_add(GRAD + g_row[:, None] + cols[None, :] * HW, dx, mask=mask)


@triton.jit
def _bwd_pos_kernel(
    S, T, P_IDX, Q_IDX, LSE, WSUM, GRAD, DLOSS,
    NP, NP_S, NQ, NQ_S, C, HW, WIDTH,
    sb, sc, sh, sw,
    inv_tau, inv_n,
    BLOCK_U: tl.constexpr, BLOCK_J: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Grid (student class-1 rows / BLOCK_U, C / BLOCK_D). For a student row u in P:

        g_uj = -(sigmoid(G_u - s_uj) + sigmoid(G_j - s_uj)) / N    j in P, j != u
               (u as the anchor of j, and as a positive of anchor j: s is symmetric)
        g_uk = W_u exp(s_uk - G_u) / N                              k in Q (u as anchor)

    accumulating dz = sum_v g_uv z_v (this program's channel block) and gs = sum_v g_uv s_uv.
    Scores are recomputed from the saved G and W; nothing N x M is stored."""
    pid_u = tl.program_id(0)
    pid_d = tl.program_id(1)
    offs_u = pid_u * BLOCK_U + tl.arange(0, BLOCK_U)  # the first NP_S rows of P are the student's
    u_rows, u_ok = _row_ptrs(S, T, P_IDX, offs_u, NP_S, NP_S, HW, WIDTH, sb, sh, sw)
    rn_u = _inv_norm(u_rows, u_ok, C, sc, BLOCK_U, BLOCK_C)
    lse_u = tl.load(LSE + offs_u, mask=offs_u < NP_S, other=0.0)
    w_u = tl.load(WSUM + offs_u, mask=offs_u < NP_S, other=0.0)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dz = tl.zeros([BLOCK_U, BLOCK_D], dtype=tl.float32)
    gs = tl.zeros([BLOCK_U], dtype=tl.float32)

    for j0 in range(0, NP, BLOCK_J):
        offs_j = j0 + tl.arange(0, BLOCK_J)
        j_rows, j_ok = _row_ptrs(S, T, P_IDX, offs_j, NP, NP_S, HW, WIDTH, sb, sh, sw)
        s, rn_j = _scores(u_rows, u_ok, rn_u, j_rows, j_ok,
                          C, sc, inv_tau, BLOCK_U, BLOCK_J, BLOCK_C, DOT_PRECISION)
        lse_j = tl.load(LSE + offs_j, mask=offs_j < NP, other=0.0)
        g = -(tl.sigmoid(lse_u[:, None] - s) + tl.sigmoid(lse_j[None, :] - s)) * inv_n
        keep = (offs_j < NP)[None, :] & (offs_j[None, :] != offs_u[:, None])
        g = tl.where(keep, g, 0.0)
        gs += tl.sum(g * s, axis=1)
        z_j = _load_rows(j_rows, j_ok, cols, C, sc).to(tl.float32)
        dz = tl.dot(g, z_j * rn_j[:, None], dz, input_precision=DOT_PRECISION)

    for k0 in range(0, NQ, BLOCK_J):
        offs_k = k0 + tl.arange(0, BLOCK_J)
        k_rows, k_ok = _row_ptrs(S, T, Q_IDX, offs_k, NQ, NQ_S, HW, WIDTH, sb, sh, sw)
        s, rn_k = _scores(u_rows, u_ok, rn_u, k_rows, k_ok,
                          C, sc, inv_tau, BLOCK_U, BLOCK_J, BLOCK_C, DOT_PRECISION)
        g = tl.where((offs_k < NQ)[None, :], w_u[:, None] * tl.exp(s - lse_u[:, None]) * inv_n, 0.0)
        gs += tl.sum(g * s, axis=1)
        z_k = _load_rows(k_rows, k_ok, cols, C, sc).to(tl.float32)
        dz = tl.dot(g, z_k * rn_k[:, None], dz, input_precision=DOT_PRECISION)

    _scatter_grad(GRAD, DLOSS, P_IDX, offs_u, NP_S, u_rows, u_ok, rn_u, dz, gs, C, HW, sc, inv_tau, pid_d,
                  BLOCK_U, BLOCK_D)


@triton.jit
def _bwd_neg_kernel(
    S, T, P_IDX, Q_IDX, LSE, WSUM, GRAD, DLOSS,
    NP, NP_S, NQ, NQ_S, C, HW, WIDTH,
    sb, sc, sh, sw,
    inv_tau, inv_n,
    BLOCK_U: tl.constexpr, BLOCK_J: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Grid (student class-0 rows / BLOCK_U, C / BLOCK_D). A student row u in Q is a
    negative of every anchor i in P (student and teacher anchors alike):

        g_ui = W_i exp(s_iu - G_i) / N

    Same accumulation and epilogue as _bwd_pos_kernel."""
    pid_u = tl.program_id(0)
    pid_d = tl.program_id(1)
    offs_u = pid_u * BLOCK_U + tl.arange(0, BLOCK_U)  # the first NQ_S rows of Q are the student's
    u_rows, u_ok = _row_ptrs(S, T, Q_IDX, offs_u, NQ_S, NQ_S, HW, WIDTH, sb, sh, sw)
    rn_u = _inv_norm(u_rows, u_ok, C, sc, BLOCK_U, BLOCK_C)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    dz = tl.zeros([BLOCK_U, BLOCK_D], dtype=tl.float32)
    gs = tl.zeros([BLOCK_U], dtype=tl.float32)

    for i0 in range(0, NP, BLOCK_J):
        offs_i = i0 + tl.arange(0, BLOCK_J)
        i_rows, i_ok = _row_ptrs(S, T, P_IDX, offs_i, NP, NP_S, HW, WIDTH, sb, sh, sw)
        s, rn_i = _scores(u_rows, u_ok, rn_u, i_rows, i_ok,
                          C, sc, inv_tau, BLOCK_U, BLOCK_J, BLOCK_C, DOT_PRECISION)
        lse_i = tl.load(LSE + offs_i, mask=offs_i < NP, other=0.0)
        w_i = tl.load(WSUM + offs_i, mask=offs_i < NP, other=0.0)
        g = tl.where((offs_i < NP)[None, :], w_i[None, :] * tl.exp(s - lse_i[None, :]) * inv_n, 0.0)
        gs += tl.sum(g * s, axis=1)
        z_i = _load_rows(i_rows, i_ok, cols, C, sc).to(tl.float32)
        dz = tl.dot(g, z_i * rn_i[:, None], dz, input_precision=DOT_PRECISION)

    _scatter_grad(GRAD, DLOSS, Q_IDX, offs_u, NQ_S, u_rows, u_ok, rn_u, dz, gs, C, HW, sc, inv_tau, pid_d,
                  BLOCK_U, BLOCK_D)


# On a GPU the launchers go through the autotuner (keyed on C and the dtypes). The backward
# kernels atomically add into GRAD, so every trial run must leave GRAD as it found it.
_fwd_tuned = triton.autotune(configs=FWD_CONFIGS, key=["C"])(_fwd_kernel)
_bwd_pos_tuned = triton.autotune(configs=BWD_CONFIGS, key=["C"], restore_value=["GRAD"])(_bwd_pos_kernel)
_bwd_neg_tuned = triton.autotune(configs=BWD_CONFIGS, key=["C"], restore_value=["GRAD"])(_bwd_neg_kernel)

KERNELS = {"_fwd_kernel": (_fwd_kernel, FWD_CONFIGS), "_bwd_pos_kernel": (_bwd_pos_kernel, BWD_CONFIGS),
           "_bwd_neg_kernel": (_bwd_neg_kernel, BWD_CONFIGS)}


# Host side


def is_interpreted() -> bool:
    """True when this module's kernels were built by Triton's CPU interpreter
    (``TRITON_INTERPRET=1`` was set before this module was first imported)."""
    return not isinstance(_fwd_kernel, triton.runtime.JITFunction)


def _common_args(feat_s: Tensor, p_idx: Tensor, n_ps: int, q_idx: Tensor, n_qs: int):
    """The shape, count and stride arguments shared by the three kernels."""
    _, C, h, w = feat_s.shape
    return (p_idx.shape[0], n_ps, q_idx.shape[0], n_qs, C, h * w, w, *feat_s.stride())


def _same_layout(feat_s: Tensor, feat_t: Tensor) -> tuple[Tensor, Tensor]:
    """The kernels take one stride set for both maps: a pair of different layouts (rare:
    both come from encoders of one architecture) is copied to contiguous."""
    if feat_s.stride() == feat_t.stride():
        return feat_s, feat_t
    return feat_s.contiguous(), feat_t.contiguous()


def _output(n: int, device) -> Tensor:
    """An fp32 ``[n]`` buffer that a kernel fills entirely: uninitialized, or filled with
    ``POISON`` (tests set NaN so that an element the kernel leaves unwritten shows)."""
    if POISON is None:
        return torch.empty(n, dtype=torch.float32, device=device)
    return torch.full((n,), POISON, dtype=torch.float32, device=device)


def _launch(kernel, tuned, grid, args, config):
    """Autotuned launch on a GPU; a fixed config (the first by default) in the interpreter,
    whose autotuner would need a GPU to time the candidates."""
    if config is None and not is_interpreted():
        tuned[grid](*args, DOT_PRECISION="ieee")
        return
    config = config or tuned.configs[0]
    kernel[grid](*args, **config.kwargs, DOT_PRECISION="ieee", num_warps=config.num_warps,
                 num_stages=config.num_stages)


class MaskedSupConTriton(torch.autograd.Function):
    """Value and gradient of the masked supervised contrastive loss by the Triton kernels.

    ``forward(feat_s, feat_t, p_idx, n_ps, q_idx, n_qs, temperature, fwd_config, bwd_config)``:
    ``p_idx`` ``[N]`` are the flat positions of the class-1 rows, its first ``n_ps`` in the
    student map, the rest in the teacher map; ``q_idx`` ``[M]`` likewise for class 0
    (``N >= 2``, ``M >= 1``). Returns a float32 scalar; the gradient goes to ``feat_s``
    only (a ``[B, C, h, w]`` tensor of its dtype). ``*_config`` pin a ``triton.Config``
    (tests); ``None`` lets the autotuner choose on a GPU.
    """

    @staticmethod
    def forward(ctx, feat_s, feat_t, p_idx, n_ps, q_idx, n_qs, temperature, fwd_config=None, bwd_config=None):
        n_pos = p_idx.shape[0]
        feat_s, feat_t = _same_layout(feat_s, feat_t)
        lse, wsum, loss_row = (_output(n_pos, feat_s.device) for _ in range(3))
        args = (feat_s, feat_t, p_idx, q_idx, lse, wsum, loss_row,
                *_common_args(feat_s, p_idx, n_ps, q_idx, n_qs), 1.0 / temperature)
        _launch(_fwd_kernel, _fwd_tuned, lambda meta: (triton.cdiv(n_pos, meta["BLOCK_N"]),), args, fwd_config)
        ctx.save_for_backward(feat_s, feat_t, p_idx, q_idx, lse, wsum)
        ctx.counts, ctx.temperature, ctx.bwd_config = (n_ps, n_qs), temperature, bwd_config
        return loss_row.sum() / n_pos

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dloss):
        feat_s, feat_t, p_idx, q_idx, lse, wsum = ctx.saved_tensors
        (n_ps, n_qs), n_pos = ctx.counts, p_idx.shape[0]
        grad = torch.zeros(feat_s.shape, dtype=torch.float32, device=feat_s.device)
        dloss = dloss.to(torch.float32).reshape(1).contiguous()  # read on device: no host sync
        common = _common_args(feat_s, p_idx, n_ps, q_idx, n_qs)
        args = (feat_s, feat_t, p_idx, q_idx, lse, wsum, grad, dloss, *common, 1.0 / ctx.temperature, 1.0 / n_pos)
        C = feat_s.shape[1]
        # Student class-1 rows (anchor and positive roles), then student class-0 rows.
        for kernel, tuned, n_rows in ((_bwd_pos_kernel, _bwd_pos_tuned, n_ps), (_bwd_neg_kernel, _bwd_neg_tuned, n_qs)):
            if n_rows == 0:
                continue

            def grid(meta, n=n_rows):  # [row blocks, channel blocks]
                return triton.cdiv(n, meta["BLOCK_U"]), triton.cdiv(C, meta["BLOCK_D"])

            _launch(kernel, tuned, grid, args, ctx.bwd_config)
        return grad.to(feat_s.dtype), None, None, None, None, None, None, None, None
