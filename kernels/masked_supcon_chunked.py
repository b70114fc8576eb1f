"""The masked supervised contrastive loss in bounded memory with PyTorch ops (CPU path).

The same algorithm as the Triton kernel (see ``masked_supcon_triton.py`` for the maths),
tiled with PyTorch ops: anchors in blocks of ``rows`` rows, the other rows in blocks of
``cols`` columns, one pass over the negatives with an online log-sum-exp and one over the
positives. No tile larger than ``rows x cols`` is held, against the eager reference's
``N x N`` and ``N x M`` buffers (and autograd's saved copies of them).

The loss is a scalar, so its gradient is computed in the forward pass, tile by tile, when
any input needs one (``ctx`` keeps the ``[N, C]`` and ``[M, C]`` gradients and backward
scales them by the upstream gradient): no tile is saved for backward and none is computed
twice, except the negatives' scores when they span more than one column block (they are
needed once for ``G_i`` and again, after ``W_i`` is known, for their gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

TILE_ELEMENTS = 1 << 22  # 4M scores (16 MB in fp32) per tile: a few tiles live at once


def tile_shape(n_pos: int, n_neg: int, tile_elements: int = TILE_ELEMENTS) -> tuple[int, int]:
    """``(rows, cols)`` of a tile: whole rows while ``rows >= 64`` fits the budget (fewer,
    larger matrix products), else 64 anchor rows and as many columns as fit."""
    width = max(n_pos, n_neg, 1)
    if tile_elements // width >= 64:
        return min(tile_elements // width, max(n_pos, 1)), width
    return 64, max(tile_elements // 64, 1)


class ChunkedSupCon(torch.autograd.Function):
    """``sum_i (1/N) sum_{j != i} softplus(G_i - s_ij)`` of normalized rows, tiled.

    ``forward(pos [N, C], neg [M, C], temperature, rows, cols)``: rows already
    L2-normalized (``N >= 2``, ``M >= 1``), in the working dtype (float32 or float64).
    Returns a scalar of that dtype; gradients flow to ``pos`` and ``neg``.
    """

    @staticmethod
    def forward(ctx, pos: Tensor, neg: Tensor, temperature: float, rows: int, cols: int) -> Tensor:
        need_grad = any(ctx.needs_input_grad[:2])
        n_pos, n_neg = pos.shape[0], neg.shape[0]
        scale = 1.0 / temperature
        total = pos.new_zeros(())
        d_pos = torch.zeros_like(pos) if need_grad else None
        d_neg = torch.zeros_like(neg) if need_grad else None
        for i0 in range(0, n_pos, rows):
            anchors = pos[i0:i0 + rows]  # [R, C]
            lse, neg_scores = _negatives_lse(anchors, neg, scale, cols)  # [R], the tile if only one
            w = torch.zeros_like(lse)
            for j0 in range(0, n_pos, cols):
                s = anchors @ pos[j0:j0 + cols].T  # [R, K] scores of the positives' block
                d = s.mul_(-scale).add_(lse[:, None])  # G_i - s_ij, in place
                sp = F.softplus(d)  # -log(e^s / (e^s + e^G))
                _zero_diagonal(sp, i0, j0)  # Eq. 5's indicator: j != i
                total += sp.sum()
                if need_grad:
                    sig = torch.sigmoid(d, out=sp)  # 1 - sigmoid(s - G): dL/ds_ij = -sig / N
                    _zero_diagonal(sig, i0, j0)
                    w += sig.sum(1)
                    sig.mul_(-scale / n_pos)  # now dL/d(z_i . z_j)
                    d_pos[i0:i0 + rows] += sig @ pos[j0:j0 + cols]  # anchor role
                    d_pos[j0:j0 + cols] += sig.T @ anchors  # positive role
            if need_grad:
                for k0 in range(0, n_neg, cols):
                    s = neg_scores if neg_scores is not None else anchors @ neg[k0:k0 + cols].T
                    # dL/ds_ik = W_i exp(s_ik - G_i) / N; s still holds raw dot products here
                    g = s.mul_(scale).sub_(lse[:, None]).exp_().mul_(w[:, None] * (scale / n_pos))
                    d_pos[i0:i0 + rows] += g @ neg[k0:k0 + cols]  # anchor role
                    d_neg[k0:k0 + cols] += g.T @ anchors  # negative role
        ctx.save_for_backward(d_pos, d_neg)
        return total / n_pos

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        d_pos, d_neg = ctx.saved_tensors
        return d_pos * grad_out, d_neg * grad_out, None, None, None


def _negatives_lse(anchors: Tensor, neg: Tensor, scale: float, cols: int) -> tuple[Tensor, Tensor | None]:
    """Online log-sum-exp over column blocks of the negatives: ``G_i`` ``[R]``.

    Keeps the running max ``m`` and ``l = sum exp(s - m)``; a block with max ``m'``
    rescales ``l`` by ``exp(m - m')``. When the negatives fit in one block, that block's
    raw dot products ``[R, M]`` are returned too, so the gradient pass need not recompute them.
    """
    m = torch.full((anchors.shape[0],), float("-inf"), dtype=anchors.dtype, device=anchors.device)
    l_sum = torch.zeros_like(m)
    for k0 in range(0, neg.shape[0], cols):
        dots = anchors @ neg[k0:k0 + cols].T  # [R, K]
        m_new = torch.maximum(m, dots.amax(1) * scale)
        l_sum = l_sum * torch.exp(m - m_new) + torch.exp(dots * scale - m_new[:, None]).sum(1)
        m = m_new
    return m + torch.log(l_sum), (dots if neg.shape[0] <= cols else None)


def _zero_diagonal(tile: Tensor, i0: int, j0: int) -> None:
    """Zero the entries of a ``[R, K]`` tile at rows ``i0 + r`` and columns ``j0 + k`` where
    the global row equals the global column (an anchor paired with itself)."""
    lo, hi = max(i0, j0), min(i0 + tile.shape[0], j0 + tile.shape[1])
    if lo < hi:
        k = torch.arange(lo, hi, device=tile.device)
        tile[k - i0, k - j0] = 0


def chunked_supcon(pos_rows: Tensor, neg_rows: Tensor, temperature: float,
                   tile_elements: int = TILE_ELEMENTS) -> Tensor:
    """Normalize the gathered rows (autograd sees this) and run :class:`ChunkedSupCon`."""
    dtype = torch.promote_types(pos_rows.dtype, torch.float32)
    pos = F.normalize(pos_rows.to(dtype), dim=1)
    neg = F.normalize(neg_rows.to(dtype), dim=1)
    rows, cols = tile_shape(pos.shape[0], neg.shape[0], tile_elements)
    return ChunkedSupCon.apply(pos, neg, temperature, rows, cols)
