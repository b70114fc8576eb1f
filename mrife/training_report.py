"""How a model's runs trained, read epoch by epoch from their histories: one run's table
(:func:`epoch_table`), its validation curve in words (:func:`read_curve`), what each
model's runs lost after their best epoch (:func:`read_late`, from
:func:`mrife.tables.best_and_last`) and which of its seeds never learned
(:func:`read_seeds`, from :func:`mrife.tables.seed_table`). Each returns a table or
Markdown lines for a chapter to show; the thresholds are :mod:`mrife.claims`'.
"""

from __future__ import annotations

import math

import pandas as pd

from mrife.claims import FALLS_BACK, NOT_LEARNING, PLATEAU
from mrife.report import join_and


def epoch_table(history: pd.DataFrame) -> pd.DataFrame:
    """One run's history for reading: indexed by epoch from 1, the loss terms that are not
    all zero (``train_`` prefix dropped), validation lIoU and F1 and the epoch's seconds."""
    terms = [c for c in history.columns if c.startswith("train_") and history[c].abs().sum() > 0]
    table = history[["epoch", *terms, "val_lIoU", "val_F1", "seconds"]].copy()
    table["epoch"] += 1
    return table.set_index("epoch").rename(columns=lambda c: c.replace("train_", "")).round(4)


def read_curve(label: str, history: pd.DataFrame) -> str:
    """A Markdown line on one run's validation lIoU curve: its best epoch, and whether it
    levels off.

    The best of the last third of the epochs is compared with the best before it: within
    :data:`PLATEAU` the curve levels off, above it is still rising, below it falls back. A
    run whose best stays below :data:`NOT_LEARNING` never learned; fewer than 6 epochs
    are too few to tell.
    """
    n, best = len(history), history["val_lIoU"].max()
    line = f"**{label}**: best validation lIoU {best:.4f} at epoch {int(history['val_lIoU'].idxmax()) + 1} of {n}"
    if n < 6:
        return line + "; too few epochs to tell whether it levels off."
    if best < NOT_LEARNING:
        return line + "; the curve stays near zero: this model has not learned to find landslides at this profile."
    cut = n - n // 3
    gain = history["val_lIoU"].iloc[cut:].max() - history["val_lIoU"].iloc[:cut].max()
    if gain >= PLATEAU:
        reading = "is still rising"
    elif gain > -PLATEAU:
        reading = "levels off (a plateau)"
    else:
        reading = "falls back below its earlier best (unsettled, not a plateau)"
    return line + f"; the last {n // 3} epochs add {gain:+.4f} to the best before them: the curve {reading}."


def read_late(table: pd.DataFrame) -> str:
    """One Markdown line per model of a :func:`mrife.tables.best_and_last` table: the
    epochs its seeds were best at, and what it lost after them.

    A model whose validation lIoU (mean over its seeds) ends less than
    :data:`mrife.claims.FALLS_BACK` below its best kept what it had learned. One that falls
    further is read by its average precision, which needs no threshold: an AP that falls
    too (by :data:`PLATEAU` or more) says the model ranks landslide pixels worse than at its
    best epoch; an AP that does not says it ranks them as well, and the loss is at the 0.5
    threshold, told by the recall (fewer pixels marked) or else the precision (more
    background marked). A model without a recorded AP gets the lIoU alone.
    """
    lines = []
    for label, runs in table.groupby(level="model", sort=False):
        mean = runs.mean(numeric_only=True)
        seeds = "its one seed" if len(runs) == 1 else f"its {len(runs)} seeds"
        line = (f"- **{label}**: best validation lIoU at epoch {join_and([str(e) for e in runs['best epoch']])} "
                f"of {int(runs['epochs'].max())}")
        start, end = mean["val_lIoU at best"], mean["val_lIoU at last"]
        if start - end < FALLS_BACK:
            lines.append(line + f"; its last epoch ends within {FALLS_BACK} of its best ({start:.3f} to {end:.3f}, "
                                f"{seeds}, mean).")
        else:
            lines.append(line + f"; from there to its last epoch its lIoU falls from {start:.3f} to {end:.3f} "
                                f"({seeds}, mean){_what_was_lost(mean)}")
    return "\n".join(lines)


def _what_was_lost(mean: pd.Series) -> str:
    """The end of a :func:`read_late` line for a model whose lIoU fell: what its AP,
    recall and precision (means over its seeds, at the best and the last epoch) say."""
    def went(metric):
        return f"{mean[f'val_{metric} at best']:.3f} to {mean[f'val_{metric} at last']:.3f}"

    ap_change = mean["val_AP at last"] - mean["val_AP at best"]
    if math.isnan(ap_change):
        return "; its average precision was not recorded."
    if ap_change <= -PLATEAU:
        return (f", and its average precision with it ({went('AP')}): it ranks landslide pixels worse than at its "
                "best epoch.")
    held = (f", while its average precision does not ({went('AP')}): it ranks landslide pixels as well as at its "
            "best epoch but marks ")
    if mean["val_recall at best"] - mean["val_recall at last"] >= PLATEAU:
        return held + f"fewer of them at the 0.5 threshold (recall {went('recall')})."
    return held + f"more background at the 0.5 threshold (precision {went('precision')})."


def read_seeds(table: pd.DataFrame) -> str:
    """One Markdown line per model of a :func:`mrife.tables.seed_table`: how many of its
    seeds learned and at which epoch each first reached :data:`NOT_LEARNING`, and each seed
    that never did with its best validation and test lIoU. A model none of whose seeds
    learned gets a line that says so."""
    lines = []
    for label, runs in table.groupby(level="model", sort=False):
        failed, learned = runs[~runs["learned"]], runs[runs["learned"]]
        epochs = join_and([str(e) for e in sorted(learned["first epoch"])])
        if failed.empty:
            best = runs["best val lIoU"]
            seeds = "its one seed" if len(runs) == 1 else f"every one of its {len(runs)} seeds"
            spread = f"{best.iloc[0]:.3f}" if len(runs) == 1 else f"{best.min():.3f} to {best.max():.3f}"
            lines.append(f"- **{label}**: {seeds} learned (best validation lIoU {spread}), first reaching "
                         f"{NOT_LEARNING} at epoch {epochs}.")
            continue
        which = "; ".join(f"seed {seed}: {row['best val lIoU']:.3f}, test lIoU {row['test lIoU']:.3f}"
                          for (_, seed), row in failed.iterrows())
        if learned.empty:
            seeds = "its one seed never" if len(runs) == 1 else f"none of its {len(runs)} seeds"
            lines.append(f"- **{label}**: {seeds} learned (best validation lIoU below {NOT_LEARNING}; {which}): "
                         "at this profile the model has not learned to find landslides.")
            continue
        line = (f"- **{label}**: {len(failed)} of its {len(runs)} seeds never learned (best validation lIoU "
                f"below {NOT_LEARNING}; {which})")
        others = "the other one" if len(learned) == 1 else f"the other {len(learned)}"
        lines.append(line + f"; {others} first reached {NOT_LEARNING} at epoch {epochs}.")
    return "\n".join(lines)


def never_learned(table: pd.DataFrame) -> str:
    """How many runs of a :func:`mrife.tables.seed_table` never learned, and which: "none of
    20", or "2 of 20 (ICSSN seed 3, B seed 3)" (the model's label and the seed)."""
    lost = [f"{model} seed {seed}" for model, seed in table.index[~table["learned"].astype(bool)]]
    return f"{len(lost)} of {len(table)} ({', '.join(lost)})" if lost else f"none of {len(table)}"
