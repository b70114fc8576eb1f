"""Curves of the runs' histories, epoch by epoch: the loss terms (Fig. 6's panels), the
validation lIoU of several runs with each best epoch ringed, the runs of an open choice
over seeds, several models' validation metrics over their seeds, and the sizing runs of
the plateau profile.

A history is a run's ``history.json`` as :class:`mrife.results.Result` holds it: a
DataFrame, or a list of records, one per epoch, with ``epoch`` (from 0) and the columns
drawn (``train_*`` loss terms, ``val_lIoU``, ``val_AP``). Epochs are drawn from 1. A
function that draws one panel takes ``ax`` (or makes one) and returns it; one that lays
out several returns the figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.ticker import MaxNLocator


def loss_curves(history, terms=("train_loss", "train_ce", "train_reconst", "train_cons"), ax=None,
                title: str | None = None, label_prefix: str = ""):
    """Per-epoch curves of the given columns of a run's history (a DataFrame or a list of
    records); columns that are absent or all zero are skipped."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3))
    for term in terms:
        values = [r.get(term) for r in _records(history)]
        if any(v for v in values if v is not None):
            epochs = [r["epoch"] + 1 for r in _records(history)]
            ax.plot(epochs, values, marker=".", label=f"{label_prefix}{term.replace('train_', '')}")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def drawn_loss_terms(history) -> list[str]:
    """The ``train_*`` columns of a history worth a curve: not the gradient shares
    (``train_share_*``), not a term that is zero at every epoch, and not the total
    ``train_loss`` when it is the cross-entropy itself (a baseline's only term)."""
    h = pd.DataFrame(_records(history))
    terms = [c for c in h.columns if c.startswith("train_") and not c.startswith("train_share")
             and h[c].abs().sum() > 0]
    if "train_loss" in terms and "train_ce" in h and h["train_loss"].equals(h["train_ce"]):
        terms.remove("train_loss")
    return terms


def loss_terms_grid(histories: dict, title: str | None = None, columns: int = 2):
    """A panel per run (``histories`` maps a label, the panel's title, to its history),
    ``columns`` to a row: each run's :func:`drawn_loss_terms` per epoch on a logarithmic
    scale, since the terms differ by orders of magnitude. Returns the figure (4.5 x 2.8
    inches a panel; an empty cell of the grid is hidden)."""
    rows = max(1, -(-len(histories) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(histories):]:
        ax.set_visible(False)
    for ax, (label, history) in zip(axes.flat, histories.items()):
        loss_curves(history, terms=drawn_loss_terms(history), ax=ax, title=label)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _validation_line(ax, history, label: str, ring: float | None):
    """One run's validation lIoU per epoch, its best epoch (the checkpoint kept) ringed
    with a marker of size ``ring`` unless ``ring`` is None. Returns the line."""
    records = _records(history)
    epochs, values = [r["epoch"] + 1 for r in records], [r["val_lIoU"] for r in records]
    line, = ax.plot(epochs, values, marker=".", label=label)
    if ring is not None and values:
        best = int(np.argmax(values))  # the first best epoch, as the kept checkpoint is
        ax.plot(epochs[best], values[best], "o", mfc="none", ms=ring, color=line.get_color())
    return line


def validation_curves(histories: dict, title: str | None = None, best: bool = True, figsize=(6.5, 3.6)):
    """The validation lIoU per epoch of several runs on one plot, a line per run
    (``histories`` maps a legend label to a history), each run's best epoch ringed when
    ``best``. Returns the figure."""
    fig, ax = plt.subplots(figsize=figsize)
    for label, history in histories.items():
        _validation_line(ax, history, label, ring=10 if best else None)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation lIoU")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if histories:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def choice_seeds(table, ax=None, title: str | None = None):
    """Each candidate of an open choice as a row of dots, one per training seed (its best
    validation lIoU), with the mean over two or more seeds as a bar: the spread a decision
    is made against. ``table`` is :func:`mrife.tables.choice_table`'s (its ``per seed``
    and ``decision`` columns); the default, listed first, is drawn at the top."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.5 * len(table) + 1.0))
    for row, (name, cand) in enumerate(table.iterrows()):
        values = list(cand["per seed"].values())
        ax.plot(values, [row] * len(values), "o", mfc="none", color="tab:blue")
        for seed, value in cand["per seed"].items():
            ax.annotate(str(seed), (value, row), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
        if len(values) > 1:
            ax.plot([np.mean(values)] * 2, [row - 0.3, row + 0.3], color="tab:red", lw=2)
    labels = [f"{name}\n{cand['decision']}" if cand["decision"] else name for name, cand in table.iterrows()]
    ax.set_yticks(range(len(table)), labels, fontsize=8)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlim(0, None)
    ax.set_xlabel("best validation lIoU (a dot per seed, labelled; bar: the mean)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def seed_curves(curves: dict, ax=None, title: str | None = None):
    """Validation lIoU per epoch of one candidate's runs, a line per seed, each run's best
    epoch (the checkpoint kept) ringed. ``curves`` maps a seed to its run's history (a
    DataFrame or records with ``epoch`` and ``val_lIoU``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.6))
    for seed, history in sorted(curves.items()):
        _validation_line(ax, history, f"seed {seed}", ring=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation lIoU")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def seed_curves_grid(curves: dict, columns: int = 4):
    """:func:`seed_curves` for several candidates, a panel each, ``columns`` to a row on
    one y scale; ``curves`` maps a candidate (the panel's title) to ``{seed: history}``.
    Returns the figure (2.6 x 2.4 inches a panel; an empty cell of the grid is hidden)."""
    cols, rows = max(1, min(columns, len(curves))), max(1, -(-len(curves) // columns))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, (name, by_seed) in zip(axes.flat, curves.items()):
        seed_curves(by_seed, ax=ax, title=name)
    fig.tight_layout()
    return fig


def curves_over_seeds(curves: dict, metrics=("val_lIoU", "val_AP", "val_recall"), title: str | None = None):
    """Several models' validation metrics epoch by epoch, over their seeds: a panel per
    metric, a line per model (the mean over its seeds) in a band from its lowest seed to
    its highest. ``curves`` maps a model to ``{seed: history}``; a metric a model did not
    record is left out of its panel (a panel no model recorded says so). Returns the
    figure (3.6 x 3 inches a panel)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    frames = {model: [pd.DataFrame(_records(h)).set_index("epoch") for h in by_seed.values()]
              for model, by_seed in curves.items()}
    for ax, metric in zip(axes[0], metrics):
        for colour, (model, runs) in zip(colours, frames.items()):
            seeds = [run[metric] for run in runs if metric in run]
            if not seeds:
                continue
            values = pd.concat(seeds, axis=1)  # epoch x seed; NaN past a shorter run's end
            epochs = values.index + 1
            ax.fill_between(epochs, values.min(axis=1), values.max(axis=1), color=colour, alpha=0.15, lw=0)
            label = f"{model} ({len(seeds)} seed{'' if len(seeds) == 1 else 's'})"
            ax.plot(epochs, values.mean(axis=1), color=colour, lw=1.4, label=label)
        if not ax.get_lines():
            ax.text(0.5, 0.5, "not recorded by these runs", ha="center", va="center", transform=ax.transAxes)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def sizing_curves(curves: dict, metrics=("val_lIoU", "val_AP"), plateau: dict | None = None):
    """The sizing runs on one figure: a panel per validation metric (lIoU, average
    precision), a colour per model and a line style per seed, epoch by epoch.

    ``curves`` maps a model to ``{seed: history}`` (DataFrames or records with ``epoch``
    and the metrics; a run without a metric, trained before it was recorded, is left out
    of its panel); ``plateau`` maps a model to the epoch (from 1) where the rule reads its
    plateau (:func:`mrife.claims.plateau_epoch`), marked by a dotted line. Returns the
    figure."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
    styles = ("-", "--", ":", "-.")
    for ax, metric in zip(axes[0], metrics):
        for colour, (model, by_seed) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], curves.items()):
            for i, (seed, history) in enumerate(sorted(by_seed.items())):
                records = [r for r in _records(history) if metric in r]
                if not records:
                    continue
                ax.plot([r["epoch"] + 1 for r in records], [r[metric] for r in records], styles[i % len(styles)],
                        color=colour, lw=1.2, label=f"{model}, seed {seed}")
            if plateau and model in plateau:
                ax.axvline(plateau[model], color=colour, ls=":", lw=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


_METRIC_LABELS = {"val_lIoU": "validation lIoU", "val_AP": "validation average precision",
                  "val_recall": "validation recall", "val_precision": "validation precision"}


def _records(history) -> list[dict]:
    """A history as a list of records, one per epoch, from a DataFrame or a list."""
    return history.to_dict("records") if hasattr(history, "to_dict") else list(history)
