"""Figures of the paper, drawn with matplotlib: block classes and masked blocks (Fig. 2),
predictions with the label's boundary in red (Fig. 4), heat maps (Figs. 5, 7, 8), loss
curves (Fig. 6), and the book's own: validation curves and open choices over seeds.

Every function draws into a given ``matplotlib.axes.Axes`` (or makes one) and returns it,
so a chapter lays figures out as it likes. Images are ``[H, W, 3]`` floats in [0, 1]
(or a normalized ``[3, H, W]`` tensor, see :func:`to_rgb`); masks ``[H, W]`` in {0, 1}.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.ticker import MaxNLocator

from mrife.data.transforms import MEAN, STD
from mrife.labels import LANDSLIDE

# background, edge, interior, padding (mrife.masking's block classes)
BLOCK_COLOURS = ListedColormap([(0, 0, 0, 0), (1.0, 0.85, 0.0, 0.55), (0.1, 0.6, 1.0, 0.45), (0.5, 0.5, 0.5, 0.6)])
# not masked, maskList_1, maskList_0 (mrife.masking.MaskedBatch.positions)
MASK_LIST_COLOURS = ListedColormap([(0, 0, 0, 0), (1.0, 0.2, 0.0, 0.9), (0.0, 0.9, 1.0, 0.9)])


def to_rgb(image) -> np.ndarray:
    """A displayable ``[H, W, 3]`` array in [0, 1] from a normalized ``[3, H, W]`` tensor
    (ImageNet mean/std, as :class:`mrife.data.TileDataset` gives) or an ``[H, W, 3]`` array."""
    if isinstance(image, torch.Tensor):
        mean = torch.as_tensor(MEAN, dtype=image.dtype).view(3, 1, 1)
        std = torch.as_tensor(STD, dtype=image.dtype).view(3, 1, 1)
        image = (image.detach().cpu() * std + mean).permute(1, 2, 0).numpy()
    return np.clip(np.asarray(image, dtype=np.float32), 0, 1)


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def boundary(mask) -> np.ndarray:
    """Landslide pixels of an ``[H, W]`` label mask that touch another label (4-neighbourhood)."""
    m = np.asarray(mask) == LANDSLIDE
    edge = np.zeros_like(m)
    edge[:-1] |= m[:-1] != m[1:]
    edge[1:] |= m[:-1] != m[1:]
    edge[:, :-1] |= m[:, :-1] != m[:, 1:]
    edge[:, 1:] |= m[:, :-1] != m[:, 1:]
    return edge & m


def _with_boundary(rgb: np.ndarray, mask) -> np.ndarray:
    """A copy of ``rgb`` ``[H, W, 3]`` with the label's boundary painted red (into the
    pixels, so it shows at any figure size); unchanged when ``mask`` is None."""
    rgb = rgb.copy()
    if mask is not None:
        rgb[boundary(mask)] = (1.0, 0.0, 0.0)
    return rgb


def show_image(image, mask=None, ax=None, title: str | None = None):
    """The image, with the label's boundary in red when ``mask`` is given."""
    ax = _axes(ax)
    ax.imshow(_with_boundary(to_rgb(image), mask))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_prediction(image, pred, mask, ax=None, title: str | None = None):
    """Fig. 4 style: predicted landslide pixels in white over a darkened image, the
    label's boundary in red."""
    ax = _axes(ax)
    rgb = 0.45 * to_rgb(image)
    p = np.asarray(pred) == LANDSLIDE
    rgb[p] = 0.35 * rgb[p] + 0.65
    ax.imshow(_with_boundary(rgb, mask))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_blocks(image, classes, block: int = 8, ax=None, title: str | None = None, mask=None):
    """Fig. 2 style: block classes ``[h, w]`` (0 background, 1 edge, 2 interior, 3 padding)
    over the image, with the label's boundary in red when ``mask`` is given."""
    ax = _axes(ax)
    ax.imshow(_with_boundary(to_rgb(image), mask))
    c = np.asarray(classes)
    h, w = c.shape
    ax.imshow(c, cmap=BLOCK_COLOURS, vmin=0, vmax=3, interpolation="nearest",
              extent=(-0.5, w * block - 0.5, h * block - 0.5, -0.5))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_positions(image, positions, block: int = 8, ax=None, title: str | None = None):
    """Fig. 2's lists: the masked blocks of :meth:`mrife.masking.MaskedBatch.positions`
    (``[h, w]``: 1 ``maskList_1`` in red, 2 ``maskList_0`` in cyan) over the image."""
    ax = _axes(ax)
    ax.imshow(to_rgb(image))
    h, w = np.asarray(positions).shape
    ax.imshow(np.asarray(positions), cmap=MASK_LIST_COLOURS, vmin=0, vmax=2, interpolation="nearest",
              extent=(-0.5, w * block - 0.5, h * block - 0.5, -0.5))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_heatmap(image, heat, mask=None, ax=None, title: str | None = None, alpha: float = 0.5):
    """A heat map ``[H, W]`` in [0, 1] (Grad-CAM) over the image, the label's boundary in red."""
    ax = _axes(ax)
    colours = plt.get_cmap("jet")(np.clip(np.asarray(heat, dtype=np.float32), 0, 1))[..., :3]
    ax.imshow(_with_boundary((1 - alpha) * to_rgb(image) + alpha * colours, mask))
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def heatmap_grid(images, masks, columns: dict, title: str | None = None):
    """Figs. 5, 7 and 8: a row per tile; columns the input, the label, then one heat map
    per entry of ``columns`` (column title -> maps ``[N, H, W]``), the label's boundary
    in red on each. ``images`` ``[N, 3, H, W]`` normalized, ``masks`` ``[N, H, W]``.
    Returns the figure."""
    n, cols = len(images), 2 + len(columns)
    width = min(10, 1.9 * cols)
    fig, axes = plt.subplots(n, cols, figsize=(width, width / cols * n), squeeze=False)
    for r in range(n):
        show_image(images[r], masks[r], ax=axes[r, 0])
        show_prediction(images[r], masks[r], masks[r], ax=axes[r, 1])
        for c, maps in enumerate(columns.values(), start=2):
            show_heatmap(images[r], maps[r], masks[r], ax=axes[r, c])
    for ax, name in zip(axes[0], ["(a) input", "(b) label", *columns]):
        ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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
        records = _records(history)
        epochs, values = [r["epoch"] + 1 for r in records], [r["val_lIoU"] for r in records]
        line, = ax.plot(epochs, values, marker=".", label=f"seed {seed}")
        best = int(np.argmax(values))
        ax.plot(epochs[best], values[best], "o", mfc="none", ms=9, color=line.get_color())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation lIoU")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def sizing_curves(curves: dict, metrics=("val_lIoU", "val_AP"), plateau: dict | None = None):
    """The sizing runs on one figure: a panel per validation metric (lIoU, average
    precision), a colour per model and a line style per seed, epoch by epoch.

    ``curves`` maps a model to ``{seed: history}`` (DataFrames or records with ``epoch``
    and the metrics; a run without a metric, trained before it was recorded, is left out
    of its panel); ``plateau`` maps a model to the epoch (from 1) where the rule reads its
    plateau (:func:`mrife.findings.plateau_epoch`), marked by a dotted line. Returns the
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
        ax.set_ylabel({"val_lIoU": "validation lIoU", "val_AP": "validation average precision"}.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _records(history) -> list[dict]:
    return history.to_dict("records") if hasattr(history, "to_dict") else list(history)
