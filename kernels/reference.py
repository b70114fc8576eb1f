"""The eager PyTorch reference the kernels are checked against: the row gather and the
supervised contrastive loss of the paper's Eqs. (4)-(5), with the indicator corrected
(``NOTES.md``: it is 1 for ``i != j``).

Feature maps are ``[B, C, h, w]``; positions are flat indices into ``B*h*w``
(``b * h*w + row * w + col``), as :class:`mrife.masking.BlockMasker` returns them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gather_rows(feat: Tensor, idx: Tensor) -> Tensor:
    """Feature rows at flat positions: ``[B, C, h, w]``, ``[N]`` -> ``[N, C]``."""
    B, C, h, w = feat.shape
    # Index the [B, C, h*w] view: only the N selected rows are copied, not the whole map.
    return feat.flatten(2)[idx // (h * w), :, idx % (h * w)]  # [N, C]


def supervised_contrastive(pos: Tensor, neg: Tensor, temperature: float = 0.07) -> Tensor:
    """Supervised contrastive loss of Eqs. (4)-(5), with the indicator corrected.

    Rows are L2-normalized here. With ``s = cos / temperature``, anchor ``i`` of ``pos``
    has ``L_i = -(1/N) sum_{j != i} log( exp(s_ij) / (exp(s_ij) + sum_k exp(s_ik)) )``,
    ``j`` over ``pos`` and ``k`` over ``neg``; the result is ``sum_i L_i``.
    It holds two ``[N, N]`` and ``[N, M]`` buffers; the Triton kernel and the chunked
    path compute the same value without them.

    Args:
        pos: ``[N, C]`` class-1 (landslide edge) feature rows: anchors and positives.
        neg: ``[M, C]`` class-0 (background) feature rows: negatives.
        temperature: tau of Eq. (5) (0.07 by default, SupCon's).

    Returns:
        A scalar (float32 at least); 0 with a zero gradient when ``N < 2`` or ``M == 0``.
    """
    N, M = pos.shape[0], neg.shape[0]
    if N < 2 or M == 0:
        return (pos.sum() + neg.sum()) * 0.0
    dtype = torch.promote_types(pos.dtype, torch.float32)
    p = F.normalize(pos.to(dtype), dim=1)
    n = F.normalize(neg.to(dtype), dim=1)
    s_pos = p @ p.T / temperature  # [N, N]
    s_neg = p @ n.T / temperature  # [N, M]
    log_neg_sum = torch.logsumexp(s_neg, dim=1, keepdim=True)  # [N, 1]
    # log(e^s / (e^s + e^L)) = s - logaddexp(s, L): stable for any temperature.
    log_ratio = s_pos - torch.logaddexp(s_pos, log_neg_sum)  # [N, N]
    off_diag = ~torch.eye(N, dtype=torch.bool, device=pos.device)
    return -(log_ratio * off_diag).sum() / N


def supcon_term_by_term(pos: Tensor, neg: Tensor, temperature: float = 0.07, indicator=None) -> float:
    """Eqs. (4)-(5) read literally, one Python loop per sum, in float64: slow, and there to
    check :func:`supervised_contrastive` against the formula as printed.

    ``indicator(i, j)`` is Eq. (5)'s I; by default the corrected ``i != j``. The paper's
    literal wording (``i == j`` only) gives another number, which is how the book shows
    the erratum. Shapes as :func:`supervised_contrastive`.
    """
    indicator = indicator or (lambda i, j: i != j)
    x, x_neg = F.normalize(pos.double(), dim=1), F.normalize(neg.double(), dim=1)
    total = 0.0
    for i in range(len(x)):
        negatives = sum(torch.exp(x[i] @ x_neg[k] / temperature) for k in range(len(x_neg)))
        l_i = 0.0
        for j in range(len(x)):
            if indicator(i, j):
                positive = torch.exp(x[i] @ x[j] / temperature)
                l_i += torch.log(positive / (positive + negatives))
        total += -l_i / len(x)  # Eq. (5) for anchor i, summed over anchors as Eq. (4)
    return float(total)
