"""Every loss term of the models: MRIFE's three (paper Sec. III-C and III-D, Eqs. 2-8)
and ICSSN's object and sub-object contrasts, built on :mod:`mrife.kernels`.

Feature maps are ``[B, C, h, w]``; masked positions are flat indices into ``B*h*w``
(``b * h*w + row * w + col``), as :class:`mrife.masking.BlockMasker` returns them.

Errata applied (see ``NOTES.md``): the indicator of Eq. (5) is 1 for i != j (in
:func:`mrife.kernels.supervised_contrastive`); Eq. (7) is the ordinary cross-entropy;
the mean of Eq. (2) is over the masked points of one image and the channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mrife.distributed import batch_share
from mrife.kernels import gather_rows, masked_supcon, supervised_contrastive
from mrife.labels import IGNORE

#: How Eq. (4) reduces over anchors: "sum" as the paper writes it (the term then grows
#: with the number of masked edge points), or "mean" as SupCon does.
SFCE_REDUCTIONS = ("sum", "mean")


def reconstruction_loss(student: Tensor, teacher: Tensor, idx: Tensor) -> Tensor:
    """Masked feature modelling, Eqs. (2)-(3).

    For each image, the MSE between the student's features of the masked image and the
    teacher's features of the original image at that image's masked positions (mean over
    its N points and C channels), summed over the images of the batch.

    Args:
        student: ``[B, C, h, w]`` student feature map (masked images).
        teacher: ``[B, C, h, w]`` teacher feature map (original images); no gradient flows
            into it.
        idx: ``[N]`` int64 flat indices of all masked blocks (both classes).

    Returns:
        A scalar; 0 (with a zero gradient) when ``idx`` is empty.
    """
    if idx.numel() == 0:
        return student.sum() * 0.0
    B, _, h, w = student.shape
    # [N, C] rows in fp32 (bf16 features under autocast lose too much in the squared differences)
    sq = (gather_rows(student, idx).float() - gather_rows(teacher, idx).detach().float()).pow(2).mean(1)  # [N]
    image = idx // (h * w)
    per_image_sum = torch.zeros(B, dtype=sq.dtype, device=sq.device).index_add_(0, image, sq)
    count = torch.bincount(image, minlength=B).to(sq.dtype)
    return (per_image_sum / count.clamp(min=1)).sum()


def sfce_loss(
    student: Tensor,
    teacher: Tensor,
    idx_pos: Tensor,
    idx_neg: Tensor,
    temperature: float = 0.07,
    reduction: str = "sum",
) -> Tensor:
    """Semantic feature contrast enhancement, Eq. (6), summed over the pairs of a batch.

    Images ``(0, 1), (2, 3), ...`` form pairs. For pair ``(a, b)`` the contrast set joins
    the student's features of masked image ``a`` and the teacher's features of original
    image ``b``, each at that image's masked positions; edge rows are class 1 and
    background rows class 0. ``L_cons_1`` (a -> b) and ``L_cons_2`` (b -> a) are summed.
    The gather, normalization and loss run in :func:`mrife.kernels.masked_supcon`
    (on CUDA the eager reference, or the Triton kernel for large row counts; on CPU the
    eager reference).

    A direction whose student image has no masked block is 0, in value as in gradient:
    its contrast set would hold the partner's teacher rows alone, a constant that trains
    nothing and must not show in the logged loss.

    Args:
        student, teacher: ``[B, C, h, w]`` feature maps (teacher: no gradient).
        idx_pos, idx_neg: int64 flat indices of the masked class-1 / class-0 blocks.
        temperature: tau.
        reduction: over the anchors of Eq. (4): "sum" (the paper's) or "mean" (each
            direction divided by its number of class-1 rows).

    Returns:
        A scalar; 0 when the batch holds no complete pair.
    """
    if reduction not in SFCE_REDUCTIONS:
        raise ValueError(f"SFCE reduction (loss.sfce_reduction) must be one of {SFCE_REDUCTIONS}, got {reduction!r}")
    B, _, h, w = student.shape
    img_pos, img_neg = idx_pos // (h * w), idx_neg // (h * w)
    total = student.sum() * 0.0
    for a in range(0, B - 1, 2):
        for src, dst in ((a, a + 1), (a + 1, a)):
            s_idx = torch.cat([idx_pos[img_pos == src], idx_neg[img_neg == src]])
            if s_idx.numel() == 0:
                continue
            t_idx = torch.cat([idx_pos[img_pos == dst], idx_neg[img_neg == dst]])
            s_lab = _labels(img_pos == src, img_neg == src)
            t_lab = _labels(img_pos == dst, img_neg == dst)
            term = masked_supcon(student, s_idx, s_lab, teacher.detach(), t_idx, t_lab, temperature=temperature)
            anchors = int(s_lab.sum() + t_lab.sum())
            total = total + (term / max(anchors, 1) if reduction == "mean" else term)
    return total


def _labels(is_pos: Tensor, is_neg: Tensor) -> Tensor:
    """Class labels ``[n_pos + n_neg]`` (1 then 0) for rows concatenated as pos, neg."""
    n_pos, n_neg = int(is_pos.sum()), int(is_neg.sum())
    lab = torch.zeros(n_pos + n_neg, dtype=torch.int64, device=is_pos.device)
    lab[:n_pos] = 1
    return lab


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. (8): ``alpha L_Reconst + beta L_Cons + gamma L_CE`` (NOTES.md: 1, 1, 1)."""

    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0


def joint_loss(
    logits: Tensor,
    target: Tensor,
    student: Tensor | None = None,
    teacher: Tensor | None = None,
    idx_pos: Tensor | None = None,
    idx_neg: Tensor | None = None,
    weights: LossWeights = LossWeights(),
    temperature: float = 0.07,
    sfce_reduction: str = "sum",
) -> dict[str, Tensor]:
    """Eq. (8) with every term reported separately.

    Args:
        logits: ``[B, 2, H, W]`` segmentation logits.
        target: ``[B, H, W]`` int64 labels in {0, 1}; ``IGNORE`` pixels (padding) do not count.
        student, teacher, idx_pos, idx_neg: the enhancement branch's outputs and the
            masker's index lists; omit them (segmentation-only models) and only the
            cross-entropy is computed. A zero weight skips its term.
        sfce_reduction: see :func:`sfce_loss`.

    Returns:
        ``{"loss", "ce", "reconst", "cons"}``: scalars; ``loss`` is the weighted sum.
        Under :func:`mrife.distributed.sharing`, each is this rank's part: summed over
        the ranks, they are the global batch's.
    """
    share = batch_share()
    if share is None:
        ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    else:  # this rank's part of the global batch's mean: its sum over the global batch's labelled pixels
        labelled = share.sum((target != IGNORE).sum().float())  # not in bf16, which rounds counts
        ce = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="sum") / labelled
    zero = ce.detach() * 0.0
    reconst, cons = zero, zero
    if student is not None and weights.alpha:
        reconst = reconstruction_loss(student, teacher, torch.cat([idx_pos, idx_neg]))
    if student is not None and weights.beta:
        cons = sfce_loss(student, teacher, idx_pos, idx_neg, temperature, sfce_reduction)
    loss = weights.alpha * reconst + weights.beta * cons + weights.gamma * ce
    return {"loss": loss, "ce": ce, "reconst": reconst, "cons": cons}


# ---------------------------------------------------------------- ICSSN's contrasts


def object_contrast(z1: Tensor, z2: Tensor, labels: Tensor, temperature: float = 0.07) -> Tensor:
    """ICSSN's object-level contrast between images (siamese views).

    For image i, the anchors and positives are its two views ``z1[i], z2[i]``; the
    negatives are both views of every image whose label differs. The term is
    ``supervised_contrastive / 2`` (the mean over the two anchors), averaged over the
    images that have a negative.

    Args:
        z1, z2: ``[B, D]`` projections of the first and second views.
        labels: int64 ``[B]`` image labels.
        temperature: tau.

    Returns:
        A scalar; 0 with a zero gradient when every image has one label.
    """
    terms = []
    for i in range(len(labels)):
        other = labels != labels[i]
        if not other.any():
            continue
        pos = torch.stack([z1[i], z2[i]])  # [2, D]
        neg = torch.cat([z1[other], z2[other]])  # [2 B', D]
        terms.append(supervised_contrastive(pos, neg, temperature) / 2)
    if not terms:
        return (z1.sum() + z2.sum()) * 0.0
    return torch.stack(terms).mean()


def sub_object_contrast(feat: Tensor, idx_pos: Tensor, idx_neg: Tensor, temperature: float = 0.07) -> Tensor:
    """ICSSN's sub-object-level contrast: boundary feature points against background points.

    All rows of the batch form one contrast set (within and across images): class 1 at
    ``idx_pos``, class 0 at ``idx_neg``. The value is ``supervised_contrastive`` on
    those rows (computed by ``masked_supcon``), divided by
    the number of anchors, so that its scale does not grow with the number of edge points.

    Args:
        feat: ``[B, D, h, w]`` point features; every row gets a gradient.
        idx_pos, idx_neg: int64 flat positions into ``B*h*w`` (``b*h*w + row*w + col``).
        temperature: tau.

    Returns:
        A scalar; 0 with a zero gradient with fewer than 2 class-1 points or no class-0 point.
    """
    idx = torch.cat([idx_pos, idx_neg])
    lab = torch.cat([torch.ones_like(idx_pos), torch.zeros_like(idx_neg)])
    none = idx[:0]  # no teacher rows: masked_supcon's second map only holds constants
    loss = masked_supcon(feat, idx, lab, feat.detach(), none, none, temperature=temperature)
    return loss / max(idx_pos.numel(), 1)
