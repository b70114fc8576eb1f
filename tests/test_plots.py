"""Figure helpers: the boundary drawn in red, and images restored from normalized tensors."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch

from mrife.data.transforms import MEAN, STD
from mrife.plots import (boundary, choice_seeds, heatmap_grid, loss_curves, seed_curves, show_blocks, sizing_curves,
                         show_positions, show_prediction, to_rgb)


def test_boundary_is_the_inner_rim():
    mask = np.zeros((6, 6), dtype=np.uint8)
    mask[1:5, 1:5] = 1
    expected = mask.astype(bool).copy()
    expected[2:4, 2:4] = False  # the inside of a 4x4 square is not on its rim
    assert np.array_equal(boundary(mask), expected), "boundary should be the square's one-pixel rim"


def test_to_rgb_inverts_the_normalization():
    rgb = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    t = (torch.from_numpy(rgb).permute(2, 0, 1) - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    assert np.allclose(to_rgb(t), rgb, atol=1e-6), "to_rgb should undo the ImageNet normalization"


def test_figures_draw_red_boundary_and_curves():
    image = np.full((16, 16, 3), 0.5, dtype=np.float32)
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:12, 4:12] = 1
    ax = show_prediction(image, mask, mask)
    drawn = ax.images[0].get_array()
    assert tuple(drawn[4, 4]) == (1.0, 0.0, 0.0), "the label's boundary should be red"
    assert show_blocks(image, np.zeros((2, 2), dtype=int)).images, "nothing drawn"
    drawn = show_blocks(image, np.zeros((2, 2), dtype=int), mask=mask).images[0].get_array()
    assert tuple(drawn[4, 4]) == (1.0, 0.0, 0.0) and tuple(drawn[8, 8]) == (0.5, 0.5, 0.5), \
        "show_blocks with a mask should paint the label's boundary red and leave the rest"
    positions = np.zeros((2, 2), dtype=int)
    positions[0, 1] = 1
    overlay = show_positions(image, positions, block=8).images[1]
    assert overlay.get_extent() == [-0.5, 15.5, 15.5, -0.5] and overlay.get_array()[0, 1] == 1, \
        "the mask lists should cover the image, one cell a block"
    ax = loss_curves([{"epoch": 0, "train_loss": 2.0, "train_cons": 0.0}, {"epoch": 1, "train_loss": 1.0, "train_cons": 0.0}])
    assert [l.get_label() for l in ax.get_lines()] == ["loss"], "all-zero terms should be skipped"


def test_choice_seeds_draws_a_dot_per_seed_and_a_mean_bar():
    import pandas as pd

    table = pd.DataFrame({"decision": ["", "chosen", "not run"],
                          "per seed": [{0: 0.3, 1: 0.1, 2: 0.2}, {0: 0.4}, {}]}, index=["default", "other", "unrun"])
    ax = choice_seeds(table)
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [sorted(line.get_xdata()) for line in dots] == [[0.1, 0.2, 0.3], [0.4], []], "one dot per seed, per row"
    bars = [line for line in ax.get_lines() if line.get_marker() != "o"]
    assert len(bars) == 1 and np.allclose(bars[0].get_xdata(), 0.2), "a mean bar only for two or more seeds"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["default", "other\nchosen", "unrun\nnot run"]


def test_seed_curves_draws_a_line_per_seed_and_rings_its_best_epoch():
    history = [{"epoch": 0, "val_lIoU": 0.1}, {"epoch": 1, "val_lIoU": 0.3}, {"epoch": 2, "val_lIoU": 0.2}]
    ax = seed_curves({1: history, 0: [{**r, "val_lIoU": 0.0} for r in history]})
    lines = ax.get_lines()
    assert [l.get_label() for l in lines if l.get_marker() == "."] == ["seed 0", "seed 1"], "a line per seed, by seed"
    ring = lines[3]
    assert (ring.get_xdata()[0], ring.get_ydata()[0]) == (2, 0.3), "seed 1's best epoch (the 2nd) should be ringed"


def test_heatmap_grid_lays_out_a_row_per_tile():
    images, masks = torch.zeros(2, 3, 16, 16), torch.zeros(2, 16, 16, dtype=torch.long)
    masks[:, 4:12, 4:12] = 1
    fig = heatmap_grid(images, masks, {"(c) one": torch.rand(2, 16, 16), "(d) two": torch.rand(2, 16, 16)}, "t")
    assert len(fig.axes) == 2 * 4, "2 tiles x (input, label, 2 maps)"
    assert [ax.get_title() for ax in fig.axes[:4]] == ["(a) input", "(b) label", "(c) one", "(d) two"]



def test_sizing_curves_draw_each_model_and_seed_in_a_panel_per_metric():
    history = [{"epoch": e, "val_lIoU": 0.1 * e, "val_AP": 0.2 * e} for e in range(4)]
    old = [{"epoch": e, "val_lIoU": 0.1} for e in range(4)]  # trained before the AP was recorded
    fig = sizing_curves({"a": {0: history, 1: history}, "b": {0: old}}, plateau={"a": 3})
    lioU, ap = fig.axes
    assert len(lioU.get_lines()) == 3 + 1, "a line per run and the plateau's marker"
    assert len(ap.get_lines()) == 2 + 1, "the run without an AP is left out of its panel"
    assert ap.get_ylabel() == "validation average precision"
    matplotlib.pyplot.close(fig)
