"""Pixel-level segmentation metrics of the paper (Sec. IV-C, Eqs. 9-14).

TP, FP, FN and TN are pooled over every pixel of the test set first, and each metric
is taken once from those sums (not averaged per image): that is how the paper's
tables satisfy lIoU = F1 / (2 - F1) (NOTES.md). Landslide (label 1) is the positive class.
"""

from __future__ import annotations

import torch
from torch import Tensor

METRIC_NAMES = ("PA", "precision", "recall", "F1", "lIoU", "mIoU")


def _ratio(num: int, den: int) -> float:
    """``num / den``, with 0/0 = 1: a class absent from prediction and target is no error."""
    return 1.0 if den == 0 else num / den


class ConfusionMatrix:
    """Binary confusion matrix accumulated over batches.

    Example:
        >>> cm = ConfusionMatrix()
        >>> cm.update(logits, masks)   # [B, 2, H, W] logits or [B, H, W] labels; [B, H, W]
        >>> cm.compute()["lIoU"]
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.tp = self.fp = self.fn = self.tn = 0

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: ``pred`` labels ``[B, H, W]`` or logits ``[B, 2, H, W]``; ``target [B, H, W]``."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        p, t = pred.bool(), target.bool()
        self.tp += int((p & t).sum())
        self.fp += int((p & ~t).sum())
        self.fn += int((~p & t).sum())
        self.tn += int((~p & ~t).sum())

    def compute(self) -> dict[str, float]:
        """``{"PA", "precision", "recall", "F1", "lIoU", "mIoU"}`` as floats in [0, 1]."""
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        liou = _ratio(tp, tp + fp + fn)
        biou = _ratio(tn, tn + fp + fn)
        return {
            "PA": _ratio(tp + tn, tp + fp + fn + tn),
            "precision": precision,
            "recall": recall,
            # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and stays defined when P + R = 0.
            "F1": _ratio(2 * tp, 2 * tp + fp + fn),
            "lIoU": liou,
            "mIoU": (liou + biou) / 2,
        }
