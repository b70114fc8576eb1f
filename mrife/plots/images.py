"""Images and what is drawn over them: the label's boundary in red, block classes and
masked blocks (Fig. 2), predictions (Fig. 4) and heat maps (Figs. 5, 7, 8), one panel each.

Every function draws into a given ``matplotlib.axes.Axes`` (or makes one) and returns it,
so a figure lays panels out as it likes (:mod:`mrife.plots.paper_figures`). Images are
``[H, W, 3]`` floats in [0, 1] (or a normalized ``[3, H, W]`` tensor, see :func:`to_rgb`);
masks ``[H, W]`` in {0, 1}.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.colors import ListedColormap

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
