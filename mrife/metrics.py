"""Pixel-level segmentation metrics of the paper (Sec. IV-C, Eqs. 9-14).

TP, FP, FN and TN are pooled over every pixel of the test set first, and each metric
is taken once from those sums (not averaged per image): that is how the paper's
tables satisfy lIoU = F1 / (2 - F1) (NOTES.md). Landslide (label 1) is the positive class.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor

METRIC_NAMES = ("PA", "precision", "recall", "F1", "lIoU", "mIoU")


def _ratio(num, den):
    """``num / den`` elementwise, with 0/0 = 1: a class absent from prediction and target is no error."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.where(den == 0, 1.0, num / np.where(den == 0, 1.0, den))


def metrics_from_counts(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """The six metrics from pooled pixel counts (numbers, or arrays of one shape)."""
    liou, biou = _ratio(tp, tp + fp + fn), _ratio(tn, tn + fp + fn)
    return {
        "PA": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and stays defined when P + R = 0.
        "F1": _ratio(2 * tp, 2 * tp + fp + fn),
        "lIoU": liou,
        "mIoU": (liou + biou) / 2,
    }


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

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """``(TP, FP, FN, TN)`` in pixels."""
        return self.tp, self.fp, self.fn, self.tn

    def compute(self) -> dict[str, float]:
        """``{"PA", "precision", "recall", "F1", "lIoU", "mIoU"}`` as floats in [0, 1]."""
        return {name: float(value) for name, value in metrics_from_counts(*self.counts).items()}

    def __repr__(self) -> str:
        return f"ConfusionMatrix(tp={self.tp}, fp={self.fp}, fn={self.fn}, tn={self.tn})"


def scene_bootstrap(
    per_scene: Mapping[str, Mapping[str, ConfusionMatrix]],
    metric: str = "lIoU",
    focus: str | None = None,
    draws: int = 2000,
    level: float = 0.9,
    seed: int = 0,
) -> pd.DataFrame:
    """How much a pooled test metric depends on which scenes happen to be in the test set.

    Test scenes are drawn with replacement (``draws`` times, as many as there are), the
    pixel counts of the drawn scenes pooled, and ``metric`` computed from them; every
    model gets the same draws, so differences between models are paired. Scenes, not
    tiles, are resampled because tiles of one scene are correlated. This measures the
    test set's sampling noise only: a different training seed would move the numbers too.

    Args:
        per_scene: model label -> test scene -> its ConfusionMatrix (the same scenes for
            every model), e.g. from :func:`mrife.reproduce.scene_confusions`.
        focus: a model label; adds a row ``"<focus> - <model>"`` per other model.

    Returns:
        A DataFrame indexed by model label (then difference rows) with columns ``value``
        (on all test scenes), ``low`` and ``high`` (the central ``level`` interval of the
        draws) and, for differences, ``share > 0`` (the share of draws where ``focus`` beats
        the other model).
    """
    if metric not in METRIC_NAMES:
        raise KeyError(f"unknown metric {metric!r}; valid: {METRIC_NAMES}")
    if not 0 < level < 1 or draws < 1:
        raise ValueError(f"level {level} must lie in (0, 1) and draws {draws} be at least 1")
    labels = list(per_scene)
    scenes = sorted(per_scene[labels[0]]) if labels else []
    for label in labels:
        if sorted(per_scene[label]) != scenes:
            raise ValueError(f"{label!r} was tested on scenes {sorted(per_scene[label])}, not {scenes}: "
                             "a paired bootstrap needs the same test scenes for every model")
    if focus is not None and focus not in per_scene:
        raise KeyError(f"focus {focus!r} is not one of {labels}")
    counts = np.array([[per_scene[m][s].counts for s in scenes] for m in labels], dtype=np.float64)  # [M, S, 4]
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(scenes), size=(draws, len(scenes)))  # [D, S] scene indices
    weights = np.stack([np.bincount(row, minlength=len(scenes)) for row in picks])  # [D, S]
    pooled = np.einsum("ds,msk->mdk", weights, counts)  # [M, D, 4]
    boot = metrics_from_counts(*np.moveaxis(pooled, -1, 0))[metric]  # [M, D]
    full = metrics_from_counts(*np.moveaxis(counts.sum(1), -1, 0))[metric]  # [M]
    tail = (1 - level) / 2
    rows = {label: {"value": full[i], "low": np.quantile(boot[i], tail), "high": np.quantile(boot[i], 1 - tail)}
            for i, label in enumerate(labels)}
    if focus is not None:
        f = labels.index(focus)
        for i, label in enumerate(labels):
            if i != f:
                diff = boot[f] - boot[i]
                rows[f"{focus} - {label}"] = {
                    "value": full[f] - full[i], "low": np.quantile(diff, tail),
                    "high": np.quantile(diff, 1 - tail), "share > 0": float((diff > 0).mean())}
    return pd.DataFrame.from_dict(rows, orient="index")
