"""Figures of the paper and the book, drawn with matplotlib, a file per kind:

- :mod:`~mrife.plots.images`: an image and what is drawn over it, one panel each (the
  label's boundary in red, block classes, masked blocks, a prediction, a heat map);
- :mod:`~mrife.plots.curves`: the runs' histories epoch by epoch (loss terms, validation
  lIoU, seeds of an open choice, models over their seeds, the sizing runs);
- :mod:`~mrife.plots.paper_figures`: whole figures laid out from those panels (Figs. 2,
  4, 5, 6, 7, 8 and chapter 10's map of a scene);
- :mod:`~mrife.plots.benchmarks`: the SFCE kernel benchmark against the problem size.

Every name is importable from ``mrife.plots``.
"""

from mrife.plots.benchmarks import kernel_scaling
from mrife.plots.curves import (choice_seeds, curves_over_seeds, drawn_loss_terms, loss_curves, loss_terms_grid,
                                seed_curves, seed_curves_grid, sizing_curves, validation_curves)
from mrife.plots.images import (BLOCK_COLOURS, MASK_LIST_COLOURS, boundary, show_blocks, show_heatmap, show_image,
                                show_positions, show_prediction, to_rgb)
from mrife.plots.paper_figures import (block_classes_figure, distillation_curves, heatmap_grid, prediction_grid,
                                       scene_map)

__all__ = [
    "BLOCK_COLOURS", "MASK_LIST_COLOURS", "block_classes_figure", "boundary", "choice_seeds",
    "curves_over_seeds", "distillation_curves", "drawn_loss_terms", "heatmap_grid", "kernel_scaling", "loss_curves",
    "loss_terms_grid", "prediction_grid", "scene_map", "seed_curves", "seed_curves_grid", "show_blocks",
    "show_heatmap", "show_image", "show_positions", "show_prediction", "sizing_curves", "to_rgb",
    "validation_curves",
]
