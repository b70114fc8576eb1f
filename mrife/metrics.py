"""Pixel-level segmentation metrics of the paper (Sec. IV-C, Eqs. 9-14).

TP, FP, FN and TN are pooled over every pixel of the test set first, and each metric
is taken once from those sums (not averaged per image): that is how the paper's
tables satisfy lIoU = F1 / (2 - F1) (NOTES.md). Landslide (label 1) is the positive class;
pixels labelled ``IGNORE`` (padding) are not counted.

No metric flatters a model that predicts nothing: its precision is 0, not 0/0 = 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mrife.labels import IGNORE

METRIC_NAMES = ("PA", "precision", "recall", "F1", "lIoU", "mIoU")


def _ratio(num, den, empty: float = 1.0):
    """``num / den`` elementwise, with ``0/0 = empty``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.where(den == 0, empty, num / np.where(den == 0, 1.0, den))


def metrics_from_counts(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """The six metrics from pooled pixel counts (numbers, or arrays of one shape).

    A ratio whose numerator and denominator are both 0 is 1 (a class absent from both
    prediction and label is no error), except precision: a model with no positive
    prediction gets 0, so that predicting nothing cannot lead a table.
    """
    liou, biou = _ratio(tp, tp + fp + fn), _ratio(tn, tn + fp + fn)
    return {
        "PA": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": _ratio(tp, tp + fp, empty=0.0),
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

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int, tn: int) -> "ConfusionMatrix":
        """A matrix holding these pixel counts (as :attr:`counts` gives them)."""
        cm = cls()
        cm.tp, cm.fp, cm.fn, cm.tn = (int(c) for c in (tp, fp, fn, tn))
        return cm

    @classmethod
    def pooled(cls, matrices) -> "ConfusionMatrix":
        """The sum of several matrices: their pixels counted together."""
        return cls.from_counts(*(sum(c) for c in zip(*(m.counts for m in matrices))))

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: ``pred`` labels ``[B, H, W]`` or logits ``[B, 2, H, W]``; ``target [B, H, W]``.

        Target pixels labelled ``IGNORE`` (255) are left out.
        """
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != IGNORE
        p, t = pred.bool()[valid], target.bool()[valid]  # [N] counted pixels
        self.tp += int((p & t).sum())
        self.fp += int((p & ~t).sum())
        self.fn += int((~p & t).sum())
        self.tn += int((~p & ~t).sum())

    @property
    def predicts_nothing(self) -> bool:
        """True when no pixel was predicted landslide (precision is then 0 by convention)."""
        return self.tp + self.fp == 0

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """``(TP, FP, FN, TN)`` in pixels."""
        return self.tp, self.fp, self.fn, self.tn

    def compute(self) -> dict[str, float]:
        """``{"PA", "precision", "recall", "F1", "lIoU", "mIoU"}`` as floats in [0, 1]."""
        return {name: float(value) for name, value in metrics_from_counts(*self.counts).items()}

    def __repr__(self) -> str:
        return f"ConfusionMatrix(tp={self.tp}, fp={self.fp}, fn={self.fn}, tn={self.tn})"


class ScoreHistogram:
    """Landslide probabilities of labelled pixels, binned, for the threshold-free
    average precision (AP) of the landslide class.

    A run that predicts all background at the 0.5 threshold has lIoU 0 whether or not it
    ranks landslide pixels above the others; AP tells the two apart. Probabilities are
    counted in :attr:`bins` equal bins of [0, 1] per class, so memory does not grow with
    the pixels and histograms of several scenes or processes add up; pixels whose
    probabilities share a bin count as tied (scikit-learn's ``average_precision_score``
    groups equal scores the same way).

    Example:
        >>> scores = ScoreHistogram()
        >>> scores.update(logits, masks)   # [B, 2, H, W] logits or [B, H, W] probabilities; [B, H, W]
        >>> scores.average_precision()
    """

    bins = 2**16

    def __init__(self):
        self.positive = np.zeros(self.bins, dtype=np.int64)  # landslide pixels per probability bin
        self.negative = np.zeros(self.bins, dtype=np.int64)

    @torch.no_grad()
    def update(self, scores: Tensor, target: Tensor) -> None:
        """Add a batch: ``scores`` logits ``[B, 2, H, W]`` or landslide probabilities in
        [0, 1] ``[B, H, W]``; ``target [B, H, W]`` (``IGNORE`` pixels left out)."""
        if scores.dim() == target.dim() + 1:
            scores = scores.float().softmax(1)[:, 1]
        if scores.shape != target.shape:
            raise ValueError(f"scores {tuple(scores.shape)} and target {tuple(target.shape)} differ in shape")
        target = target.to(scores.device)
        valid = target != IGNORE
        # A NaN probability (a diverged model) ranks a pixel last, as a 0 would.
        probability = torch.nan_to_num(scores[valid].float(), nan=0.0).clamp(0, 1)
        index = (probability * (self.bins - 1)).round().long().cpu()  # [N] bin of each pixel
        positive = target[valid].bool().cpu()
        self.positive += torch.bincount(index[positive], minlength=self.bins).numpy()
        self.negative += torch.bincount(index[~positive], minlength=self.bins).numpy()

    def merge(self, other: "ScoreHistogram") -> "ScoreHistogram":
        """This histogram with ``other``'s pixels added (in place; returns self)."""
        self.positive += other.positive
        self.negative += other.negative
        return self

    def average_precision(self) -> float:
        """AP = sum over thresholds, highest first, of (R_n - R_(n-1)) P_n: precision at each
        threshold weighted by the recall it adds, no interpolation (as scikit-learn's
        ``average_precision_score``). NaN without any landslide pixel."""
        tp = np.cumsum(self.positive[::-1])  # landslide pixels at or above each threshold, highest first
        fp = np.cumsum(self.negative[::-1])
        if tp[-1] == 0:
            return float("nan")
        seen = (self.positive[::-1] + self.negative[::-1]) > 0  # thresholds a pixel sits at
        tp, fp = tp[seen], fp[seen]
        recall_gain = np.diff(tp, prepend=0) / tp[-1]
        return float(np.sum(recall_gain * tp / (tp + fp)))


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
            every model), e.g. from :func:`mrife.results.scene_confusions`.
        focus: a model label; adds a row ``"<focus> - <model>"`` per other model.

    Returns:
        A DataFrame indexed by model label (then difference rows) with columns ``value``
        (on all test scenes), ``low`` and ``high`` (the central ``level`` interval of the
        draws) and, for differences, ``share > 0`` (the share of draws where ``focus`` beats
        the other model).
    """
    # One seed per model: the seed draw always picks it, and the scene draws (taken first
    # from the generator) are those of a bootstrap over scenes alone.
    table = hierarchical_bootstrap({label: {0: cms} for label, cms in per_scene.items()},
                                   metric, focus, draws, level, seed)
    return table[[c for c in ("value", "low", "high", "share > 0") if c in table]]


def hierarchical_bootstrap(
    per_seed_scene: Mapping[str, Mapping[int, Mapping[str, ConfusionMatrix]]],
    metric: str = "lIoU",
    focus: str | None = None,
    draws: int = 2000,
    level: float = 0.9,
    seed: int = 0,
    paired_seeds: bool = False,
) -> pd.DataFrame:
    r"""How much a pooled test metric depends on the training seeds *and* the test scenes.

    A number in our tables moves for two independent reasons: training noise (another
    seed gives another model: initialization, data order, augmentation and mask draws)
    and test sampling noise (another set of test scenes scores the same model
    differently). :func:`scene_bootstrap` measures only the second, holding one trained
    model fixed, so a difference it calls clear may be one lucky seed; resampling only
    the seeds would treat the few test scenes as the whole population. This bootstrap
    resamples both factors at once, independently: the "pigeonhole" bootstrap of a
    crossed seed x scene design (Owen, Ann. Appl. Stat. 1(2), 2007, 386-411); Owen and
    Eckles (Ann. Appl. Stat. 6(3), 2012) show that bootstraps of this kind are mildly
    conservative, biased towards overestimating the variance.

    Let :math:`c_{m,k,s} = (TP, FP, FN, TN)` be the counts of model ``m``, seed
    :math:`k \in 1..K_m`, scene :math:`s \in 1..S`. Draw :math:`b` takes

    - scene weights :math:`w_{b,s}` (how often scene ``s`` is drawn in ``S`` draws with
      replacement), *one* vector shared by every model, so that differences between
      models are paired over scenes;
    - seed weights :math:`v_{m,b,k}` (``K_m`` draws with replacement), independently for
      each model: seed ``k`` of one model has nothing to do with seed ``k`` of another;

    and scores :math:`\theta^*_{m,b} = g(\sum_k \sum_s v_{m,b,k} w_{b,s} c_{m,k,s})`, the
    metric ``g`` of the pooled counts (the metrics pool pixels, Eqs. 9-14). The interval
    is the central ``level`` share of :math:`\theta^*_{m,\cdot}`, and for a difference of
    :math:`\theta^*_{f,\cdot} - \theta^*_{m,\cdot}`. With 3 to 5 seeds the seed factor has
    few distinct draws (10 multisets of 3 seeds) and a percentile interval from so few
    seeds is rough: read it as a scale of the noise, not an exact coverage.

    With ``paired_seeds`` the seed weights are drawn once per draw, :math:`v_{b,k}`, and
    shared by every model, as the scene weights are: seed ``k`` of every model is then
    taken as the same draw of training noise. That holds where a seed fixes the same
    things for every model (in this project the data order, the augmentation and mask
    draws, and the initialization of what is built first), and it narrows the interval
    of a difference as far as the models' seeds go up and down together. Every model
    must then have the same seeds.

    Args:
        per_seed_scene: model label -> training seed -> test scene -> its ConfusionMatrix.
            Every seed of every model must hold the same test scenes; the number of seeds
            may differ between models. E.g. from :func:`mrife.results.seed_scene_confusions`.
        metric: one of :data:`METRIC_NAMES`.
        focus: a model label; adds a row ``"<focus> - <model>"`` per other model.
        draws: bootstrap draws; level: central share the interval covers; seed: of the draws.
        paired_seeds: resample the seeds of every model together (see above).

    Returns:
        A DataFrame indexed by model label (then difference rows) with columns ``value``
        (the metric of every seed and scene pooled), ``mean`` (mean over seeds of each
        seed's metric on all scenes, what :func:`mrife.tables.compare` shows), ``sd``
        (their standard deviation over seeds, ddof 1; NaN for one seed), ``seeds``,
        ``low`` and ``high`` (the interval) and, for difference rows, ``share > 0`` (the
        share of draws where ``focus`` beats the other model); a difference row's
        ``value`` and ``mean`` are the differences of the two models' ones.
    """
    if metric not in METRIC_NAMES:
        raise KeyError(f"unknown metric {metric!r}; valid: {METRIC_NAMES}")
    if not 0 < level < 1 or draws < 1:
        raise ValueError(f"level {level} must lie in (0, 1) and draws {draws} be at least 1")
    labels = list(per_seed_scene)
    if focus is not None and focus not in per_seed_scene:
        raise KeyError(f"focus {focus!r} is not one of {labels}")
    for label in labels:
        if not per_seed_scene[label]:
            raise ValueError(f"{label!r} has no seed")
    if paired_seeds and len({tuple(sorted(per_seed_scene[label])) for label in labels}) > 1:
        raise ValueError("paired seeds need the same seeds for every model, not "
                         + "; ".join(f"{label}: {sorted(per_seed_scene[label])}" for label in labels))
    first = next(iter(per_seed_scene[labels[0]].values())) if labels else {}
    scenes = sorted(first)
    for label in labels:
        for k, per_scene in per_seed_scene[label].items():
            if sorted(per_scene) != scenes:
                raise ValueError(f"{label!r} seed {k} was tested on scenes {sorted(per_scene)}, not {scenes}: "
                                 "a paired bootstrap needs the same test scenes for every model and seed")
    counts = {label: np.array([[per_seed[k][s].counts for s in scenes] for k in sorted(per_seed)], dtype=np.float64)
              for label, per_seed in per_seed_scene.items()}  # label -> [K, S, 4], seeds in order
    rng = np.random.default_rng(seed)
    n_scenes = len(scenes)
    scene_picks = rng.integers(n_scenes, size=(draws, n_scenes))  # [D, S] scene indices
    scene_w = np.stack([np.bincount(row, minlength=n_scenes) for row in scene_picks]).astype(np.float64)  # [D, S]

    def score(c):  # [..., 4] counts -> [...] metric
        return metrics_from_counts(*np.moveaxis(c, -1, 0))[metric]

    def seed_weights(k):  # [D, K]: how often each of k seeds is drawn in k draws
        picks = rng.integers(k, size=(draws, k))
        return np.stack([np.bincount(row, minlength=k) for row in picks]).astype(np.float64)

    shared = seed_weights(len(counts[labels[0]])) if paired_seeds and labels else None
    boot, rows = {}, {}
    for label in labels:
        c = counts[label]  # [K, S, 4]
        k = len(c)
        seed_w = shared if paired_seeds else seed_weights(k)
        boot[label] = score(np.einsum("dk,ds,ksc->dc", seed_w, scene_w, c))  # [D]
        per_seed = score(c.sum(1))  # [K]: each seed on all scenes
        rows[label] = {"value": float(score(c.sum((0, 1)))), "mean": float(per_seed.mean()),
                       "sd": float(per_seed.std(ddof=1)) if k > 1 else np.nan, "seeds": k}
    tail = (1 - level) / 2
    for label in labels:
        rows[label] |= {"low": np.quantile(boot[label], tail), "high": np.quantile(boot[label], 1 - tail)}
    if focus is not None:
        for label in labels:
            if label != focus:
                diff = boot[focus] - boot[label]
                rows[f"{focus} - {label}"] = {
                    "value": rows[focus]["value"] - rows[label]["value"],
                    "mean": rows[focus]["mean"] - rows[label]["mean"], "sd": np.nan,
                    "seeds": f"{rows[focus]['seeds']} vs {rows[label]['seeds']}",
                    "low": np.quantile(diff, tail), "high": np.quantile(diff, 1 - tail),
                    "share > 0": float((diff > 0).mean())}
    columns = ["value", "mean", "sd", "seeds", "low", "high"] + (["share > 0"] if focus is not None else [])
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
