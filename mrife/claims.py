"""The rules the book reads its runs with, in one place: when a run has learned, when a
curve levels off, what an interval says of a claim, and how an open choice is decided.

Each rule returns a typed value (a number, a :class:`Decision`, a verdict of
:data:`VERDICTS`); the words a chapter prints are built from those values in
:mod:`mrife.report`, never by reading them back out of text.
"""

from __future__ import annotations

import enum
import math

import numpy as np
import pandas as pd

NOT_LEARNING = 0.05  # a best validation lIoU below this: the run never learned to find landslides
PLATEAU = 0.01  # a curve's last third within this of its earlier best: it levels off
# A last epoch this far or more below the best (validation lIoU, mean over a model's seeds):
# the run lost what it had learned. Above the swing from one epoch to the next of runs that
# level off (about 0.02 between the best and the last epoch at the plateau profile).
FALLS_BACK = 0.05

VERDICTS = ("reproduced", "inconclusive", "reversed")  # what verdict can say of a claim that ran


def verdict(low: float, high: float, paper_sign: float) -> str:
    """What an interval of our difference says about a difference the paper reports.

    ``paper_sign`` is the paper's difference (or just its sign). Returns "reproduced" when
    the interval excludes 0 on the paper's side (``low > 0`` for a positive difference),
    "reversed" when it excludes 0 on the other side, and "inconclusive" when it holds 0
    (an end exactly at 0 holds it).

    Raises:
        ValueError: the paper's difference is 0 or NaN (no side to reproduce), an end of the
            interval is NaN, or ``low > high``.
    """
    if not paper_sign or math.isnan(paper_sign):
        raise ValueError(f"the paper's difference {paper_sign} has no sign: nothing to reproduce or reverse")
    if math.isnan(low) or math.isnan(high) or low > high:
        raise ValueError(f"({low}, {high}) is not an interval")
    if low > 0 or high < 0:
        return "reproduced" if (low > 0) == (paper_sign > 0) else "reversed"
    return "inconclusive"


def plateau_epoch(curves: dict[str, list[pd.DataFrame]], window: int = 3, within: float = PLATEAU) -> pd.DataFrame:
    """Where each model's validation curve reaches its plateau, by the rule the plateau
    profile's epoch count is read with (chapter 5 states it before the runs are read).

    The rule: average the model's seeds' validation lIoU epoch by epoch, take the moving
    average over ``window`` epochs (the epoch and the ones before it), and find the first
    epoch at which it is within ``within`` of its maximum over the whole run. The profile's
    epoch count is the latest of those epochs over the models (``attrs["epochs"]``): the
    smallest E at which every model has reached its plateau.

    Args:
        curves: model -> the histories of its seeds (each with a ``val_lIoU`` column, one
            row per epoch); seeds of unequal length are cut to the shortest.

    Returns:
        A DataFrame indexed by model: ``seeds``, ``epochs`` (read), ``plateau epoch`` (from
        1), ``moving average at it`` and ``its maximum`` (lIoU in [0, 1]).
    """
    rows = {}
    for model, histories in curves.items():
        if not histories:
            continue
        n = min(len(h) for h in histories)
        if n < window:
            raise ValueError(f"{model}: {n} epochs, fewer than the moving average's {window}")
        mean = pd.concat([h["val_lIoU"].iloc[:n].reset_index(drop=True) for h in histories], axis=1).mean(axis=1)
        moving = mean.rolling(window).mean()  # NaN for the first window - 1 epochs
        first = int(moving.index[moving >= moving.max() - within][0])
        rows[model] = {"seeds": len(histories), "epochs": n, "plateau epoch": first + 1,
                       "moving average at it": float(moving[first]), "its maximum": float(moving.max())}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["epochs"] = int(table["plateau epoch"].max()) if rows else None
    return table


class Decision(enum.StrEnum):
    """What the rule of :func:`decide` says of each candidate of an open choice (shown as its text)."""

    CHOSEN = "chosen"
    WITHIN_NOISE = "best, within seed noise"
    DEFAULT_LEADS = "kept: the default leads"
    NO_CLEAR_WINNER = "kept: no clear winner"
    UNDECIDED = "leading; undecided below the seeds the rule needs"
    NOT_RUN = "not run"
    NONE = ""  # a candidate that ran and is neither the leader nor a kept default


def decide(per_seed: dict[str, dict[int, float]], min_seeds: int = 3) -> dict[str, Decision]:
    """The open-choice rule, on the validation split: candidate -> :class:`Decision`.

    ``per_seed`` maps each candidate, the default first, to its seeds' best validation
    lIoU. The candidate with the highest mean over its seeds is ``CHOSEN`` when it leads
    the default by more than the larger of their two standard deviations over seeds
    (ddof 1); otherwise the default stays (``WITHIN_NOISE`` for the leader and
    ``NO_CLEAR_WINNER`` for the default, or ``DEFAULT_LEADS`` when the default leads).
    Nothing is decided before every candidate has ``min_seeds`` seeds (the leader is
    ``UNDECIDED``). Ties go to the candidate listed first.
    """
    out = {name: Decision.NONE if seeds else Decision.NOT_RUN for name, seeds in per_seed.items()}
    mean = {name: float(np.mean(list(s.values()))) for name, s in per_seed.items() if s}
    if len(mean) < 2:
        return out
    default, top = next(iter(per_seed)), max(mean, key=mean.get)  # max keeps the first of equals
    sd = {name: float(np.std(list(per_seed[name].values()), ddof=1)) if len(per_seed[name]) > 1 else math.nan
          for name in (default, top)}
    if min(len(s) for s in per_seed.values()) < min_seeds:
        out[top] = Decision.UNDECIDED
    elif top == default:
        out[top] = Decision.DEFAULT_LEADS
    elif mean[top] - mean.get(default, math.nan) > np.nanmax([sd[top], sd[default], 0.0]):
        out[top] = Decision.CHOSEN
    else:
        out[top], out[default] = Decision.WITHIN_NOISE, Decision.NO_CLEAR_WINNER
    return out
