"""The paper's figures laid out whole, each from the panels of :mod:`mrife.plots.images`
and :mod:`mrife.plots.curves`: the mask module's block classes (Fig. 2), predictions
beside the label (Fig. 4), heat maps (Figs. 5, 7 and 8), training without and with
self-distillation (Fig. 6); and the book's whole-scene map (chapter 10). Each returns its
figure.
"""

from __future__ import annotations

import re

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from mrife.masking import BACKGROUND, CLASS_NAMES, EDGE, INTERIOR
from mrife.plots.curves import _records, loss_curves
from mrife.plots.images import BLOCK_COLOURS, show_blocks, show_heatmap, show_image, show_prediction


def block_classes_figure(image, mask, classes, origin: tuple[int, int], chosen: dict, block: int,
                         size: int = 64):
    """Fig. 2: (a) the block classes over the whole image, the zoomed window framed in
    white; (b) the ``size`` x ``size`` window, its blocks gridded in white and a typical
    block of each class framed in black and lettered; (c), (d), (e) those blocks (a
    background, an edge and an interior one) with their landslide pixel count ``n``; a
    legend of the classes' colours. The label's boundary is red throughout.

    ``image`` ``[H, W, 3]`` in [0, 1], ``mask`` ``[H, W]`` in {0, 1}, ``classes``
    ``[H / block, W / block]`` (:func:`mrife.masking.classify_blocks`); ``origin`` the
    window's top-left block and ``chosen`` class -> ``(row, column)`` of its typical
    block, in blocks of the image (:func:`mrife.masking.zoom_window`).
    """
    (r0, c0), side = origin, size // block  # side: the window's blocks a side
    classes, mask = np.asarray(classes), np.asarray(mask)
    fig = plt.figure(figsize=(10, 4.4))
    grid = fig.add_gridspec(3, 3, width_ratios=[4, 4, 1.3])
    ax_a, ax_b = fig.add_subplot(grid[:, 0]), fig.add_subplot(grid[:, 1])
    show_blocks(image, classes, block, ax=ax_a, title=f"(a) {mask.shape[0]} x {mask.shape[1]} sample, block classes",
                mask=mask)
    ax_a.add_patch(Rectangle((c0 * block - 0.5, r0 * block - 0.5), size, size, fill=False, color="white", lw=1.5))
    ys, xs = slice(r0 * block, (r0 + side) * block), slice(c0 * block, (c0 + side) * block)
    show_blocks(image[ys, xs], classes[r0 : r0 + side, c0 : c0 + side], block, ax=ax_b,
                title=f"(b) the {size} x {size} part", mask=mask[ys, xs])
    for t in range(1, side):
        ax_b.axhline(t * block - 0.5, color="white", lw=0.4, alpha=0.6)
        ax_b.axvline(t * block - 0.5, color="white", lw=0.4, alpha=0.6)
    letters = {BACKGROUND: "(c)", EDGE: "(d)", INTERIOR: "(e)"}
    for row, (k, letter) in enumerate(letters.items()):
        r, c = chosen[k]
        ax_b.add_patch(Rectangle(((c - c0) * block - 0.5, (r - r0) * block - 0.5), block, block,
                                 fill=False, color="black", lw=2))
        ax_b.text((c - c0) * block + block / 2, (r - r0) * block - 1.5, letter, ha="center", fontsize=8)
        ys, xs = slice(r * block, (r + 1) * block), slice(c * block, (c + 1) * block)
        show_image(image[ys, xs], mask[ys, xs], ax=fig.add_subplot(grid[row, 2]),
                   title=f"{letter} {CLASS_NAMES[k]}, n = {int(mask[ys, xs].sum())}")
    fig.legend(handles=[Patch(color=BLOCK_COLOURS(EDGE), label="edge"),
                        Patch(color=BLOCK_COLOURS(INTERIOR), label="interior"),
                        Patch(facecolor="none", edgecolor="grey", label="background")],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def prediction_grid(images, masks, predictions: dict, rows=None, title: str | None = None):
    """Fig. 4: a row per tile; columns (a) the input with the label's boundary, (b) the
    label drawn as a prediction, then one column per model (``predictions`` maps a column
    title to its predictions ``[N, H, W]`` in {0, 1}), lettered from (c): predicted
    landslide in white, the label's boundary in red. ``images`` ``[N, 3, H, W]``
    normalized (or ``[N, H, W, 3]`` in [0, 1]), ``masks`` ``[N, H, W]``; ``rows``, the
    tiles' scene names, label the rows. 1.9 inches a panel."""
    n = len(images)
    columns = ["(a) input", "(b) label"] + [f"({chr(ord('c') + i)}) {label}" for i, label in enumerate(predictions)]
    fig, axes = plt.subplots(n, len(columns), figsize=(1.9 * len(columns), 1.9 * n), squeeze=False)
    for r in range(n):
        show_image(images[r], masks[r], ax=axes[r, 0])
        show_prediction(images[r], masks[r], masks[r], ax=axes[r, 1])
        for c, pred in enumerate(predictions.values(), start=2):
            show_prediction(images[r], pred[r], masks[r], ax=axes[r, c])
        if rows is not None:
            axes[r, 0].set_ylabel(rows[r], fontsize=8)
    for ax, name in zip(axes[0], columns):
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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


def distillation_curves(histories: dict, title: str | None = None):
    """Fig. 6: a panel of :func:`~mrife.plots.curves.loss_curves` per run on one
    logarithmic y scale, so the panels compare (``histories`` maps a panel's title, such
    as ``"(a) without self-distillation"``, to the run's history), then a last panel with
    the runs' validation lIoU per epoch, each line labelled by its panel's title without
    the letter. 10 x 3.2 inches."""
    fig, axes = plt.subplots(1, len(histories) + 1, figsize=(10, 3.2))
    *loss_axes, val = axes
    for ax, (name, history) in zip(loss_axes, histories.items()):
        loss_curves(history, ax=ax, title=name)
        ax.set_yscale("log")
    limits = [y for ax in loss_axes for y in ax.get_ylim()]
    for ax in loss_axes:
        ax.set_ylim(min(limits), max(limits))
    top = 0.0
    for name, history in histories.items():
        records = _records(history)
        val.plot([r["epoch"] + 1 for r in records], [r["val_lIoU"] for r in records], marker=".",
                 label=re.sub(r"^\(\w\)\s*", "", name))
        top = max([top] + [r["val_lIoU"] for r in records])
    val.set(xlabel="epoch", title=f"({chr(ord('a') + len(histories))}) validation lIoU", ylim=(0, max(0.05, 1.1 * top)))
    val.title.set_fontsize(9)
    val.grid(alpha=0.3)
    val.legend(fontsize=8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def scene_map(image, mask, probability, features, to_pixels, name: str = "scene"):
    """Chapter 10's map of a whole scene, three panels: the image ``[H, W, 3]`` with the
    label's (``mask`` ``[H, W]``) boundary in red; the landslide probability ``[H, W]`` in
    [0, 1] with its colour bar; the image with the label's outline in red and the
    polygons in yellow. ``features`` are the GeoJSON features ``mrife predict`` writes
    (each a Polygon whose outer ring is in map coordinates), brought to pixels by
    ``to_pixels``, the inverse of the raster's affine transform (``~src.transform``).
    10 x 3.6 inches."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    show_image(image, mask, ax=axes[0], title=f"{name}: label boundary in red")
    shown = axes[1].imshow(probability, cmap="magma", vmin=0, vmax=1)
    axes[1].set_title("landslide probability", fontsize=9)
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    show_image(image, ax=axes[2], title="polygons (yellow) and label (red)")
    axes[2].contour(mask, levels=[0.5], colors="red", linewidths=0.8)
    for feature in features:
        ring = np.array([to_pixels @ tuple(xy) for xy in feature["geometry"]["coordinates"][0]])  # [K, 2]: column, row
        axes[2].plot(ring[:, 0], ring[:, 1], color="yellow", linewidth=1)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig
