"""Figure helpers: the boundary drawn in red, and images restored from normalized tensors."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from mrife.data.transforms import MEAN, STD
from matplotlib import pyplot as plt

from mrife.masking import BACKGROUND, EDGE, INTERIOR
from mrife.plots import (block_classes_figure, boundary, choice_seeds, curves_over_seeds, distillation_curves,
                         drawn_loss_terms, heatmap_grid, kernel_scaling, loss_curves, loss_terms_grid, prediction_grid,
                         scene_map, seed_curves, seed_curves_grid, show_blocks, show_positions, show_prediction,
                         sizing_curves, to_rgb, validation_curves)


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
    plt.close("all")


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
    plt.close(ax.figure)


def test_seed_curves_draws_a_line_per_seed_and_rings_its_best_epoch():
    history = [{"epoch": 0, "val_lIoU": 0.1}, {"epoch": 1, "val_lIoU": 0.3}, {"epoch": 2, "val_lIoU": 0.2}]
    ax = seed_curves({1: history, 0: [{**r, "val_lIoU": 0.0} for r in history]})
    lines = ax.get_lines()
    assert [l.get_label() for l in lines if l.get_marker() == "."] == ["seed 0", "seed 1"], "a line per seed, by seed"
    ring = lines[3]
    assert (ring.get_xdata()[0], ring.get_ydata()[0]) == (2, 0.3), "seed 1's best epoch (the 2nd) should be ringed"
    plt.close(ax.figure)


def test_heatmap_grid_lays_out_a_row_per_tile():
    images, masks = torch.zeros(2, 3, 16, 16), torch.zeros(2, 16, 16, dtype=torch.long)
    masks[:, 4:12, 4:12] = 1
    fig = heatmap_grid(images, masks, {"(c) one": torch.rand(2, 16, 16), "(d) two": torch.rand(2, 16, 16)}, "t")
    assert len(fig.axes) == 2 * 4, "2 tiles x (input, label, 2 maps)"
    assert [ax.get_title() for ax in fig.axes[:4]] == ["(a) input", "(b) label", "(c) one", "(d) two"]
    plt.close(fig)


def test_sizing_curves_draw_each_model_and_seed_in_a_panel_per_metric():
    history = [{"epoch": e, "val_lIoU": 0.1 * e, "val_AP": 0.2 * e} for e in range(4)]
    old = [{"epoch": e, "val_lIoU": 0.1} for e in range(4)]  # trained before the AP was recorded
    fig = sizing_curves({"a": {0: history, 1: history}, "b": {0: old}}, plateau={"a": 3})
    lioU, ap = fig.axes
    assert len(lioU.get_lines()) == 3 + 1, "a line per run and the plateau's marker"
    assert len(ap.get_lines()) == 2 + 1, "the run without an AP is left out of its panel"
    assert ap.get_ylabel() == "validation average precision"
    plt.close(fig)


def test_curves_over_seeds_draw_each_models_mean_in_the_band_of_its_seeds():
    low = [{"epoch": e, "val_lIoU": 0.1 * e, "val_AP": 0.5, "val_recall": 0.2} for e in range(3)]
    high = [{**r, "val_lIoU": 0.1 * r["epoch"] + 0.2} for r in low]
    old = [{"epoch": e, "val_lIoU": 0.3, "val_recall": 0.1} for e in range(3)]  # trained before the AP was recorded
    fig = curves_over_seeds({"a": {0: low, 1: high}, "b": {0: old}}, title="t")
    lioU, ap, recall = fig.axes
    assert [line.get_label() for line in lioU.get_lines()] == ["a (2 seeds)", "b (1 seed)"]
    assert list(lioU.get_lines()[0].get_xdata()) == [1, 2, 3], "epochs from 1"
    assert list(lioU.get_lines()[0].get_ydata()) == pytest.approx([0.1, 0.2, 0.3]), "the mean of the two seeds"
    assert len(ap.get_lines()) == 1 and len(recall.get_lines()) == 2, "the run without an AP is left out of its panel"
    assert recall.get_ylabel() == "validation recall"
    plt.close(fig)
    fig = curves_over_seeds({"b": {0: old}}, metrics=("val_AP",))
    assert [t.get_text() for t in fig.axes[0].texts] == ["not recorded by these runs"]
    plt.close(fig)


def test_kernel_scaling_draws_a_line_per_backend_in_order_of_size():
    rows = [{"backend": b, "N": n, "time_s": t * n, "peak_extra_bytes": m * n * n}
            for b, t, m in (("triton", 2.0, 0), ("torch", 1.0, 8)) for n in (4096, 1024)]
    fig = kernel_scaling(rows, title="H200")
    memory, time = fig.axes
    assert [line.get_label() for line in time.get_lines()] == ["triton", "torch"]
    torch_time = time.get_lines()[1]
    assert list(torch_time.get_xdata()) == [1024, 4096] and list(torch_time.get_ydata()) == [1024.0, 4096.0]
    assert min(memory.get_lines()[0].get_ydata()) > 0, "no extra memory still shows on the log axis"
    assert memory.get_xscale() == memory.get_yscale() == "log"
    plt.close(fig)


def history(epochs: int = 3, **columns) -> list[dict]:
    """Records of a run's history.json: ``column=f`` gives the column ``f(epoch)``."""
    return [{"epoch": e, **{k: f(e) for k, f in columns.items()}} for e in range(epochs)]


def test_loss_terms_grid_draws_each_run_s_terms_on_a_log_scale():
    mrife_run = history(train_loss=lambda e: 3.0 - e, train_ce=lambda e: 1.0, train_cons=lambda e: 2.0 - e,
                        train_share_ce=lambda e: 0.5, train_reconst=lambda e: 0.0)
    baseline = history(train_loss=lambda e: 1.0 / (e + 1), train_ce=lambda e: 1.0 / (e + 1))
    assert drawn_loss_terms(mrife_run) == ["train_loss", "train_ce", "train_cons"], \
        "shares and all-zero terms are not drawn"
    assert drawn_loss_terms(baseline) == ["train_ce"], "a total that is the cross-entropy is drawn once"
    fig = loss_terms_grid({"MRIFE": mrife_run, "baseline": baseline, "third": baseline}, title="t")
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible(), "2 x 2 panels, the empty fourth hidden"
    assert [ax.get_title() for ax in fig.axes[:3]] == ["MRIFE", "baseline", "third"]
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["loss", "ce", "cons"]
    assert all(ax.get_yscale() == "log" for ax in fig.axes[:3]), "the terms differ by orders of magnitude"
    assert tuple(fig.get_size_inches()) == (9, 5.6)
    plt.close(fig)


def test_validation_curves_draw_a_line_per_run_and_ring_its_best_epoch():
    runs = {"a": history(val_lIoU=lambda e: [0.1, 0.4, 0.2][e]), "b": history(val_lIoU=lambda e: 0.1 * e)}
    fig = validation_curves(runs, title="t")
    ax = fig.axes[0]
    assert [l.get_label() for l in ax.get_lines() if l.get_marker() == "."] == ["a", "b"]
    rings = [(l.get_xdata()[0], l.get_ydata()[0]) for l in ax.get_lines() if l.get_marker() == "o"]
    assert rings == [(2, 0.4), (3, 0.2)], "each run's best epoch (from 1) should be ringed"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(fig)
    fig = validation_curves(runs, best=False, figsize=(6.5, 3.4))
    assert len(fig.axes[0].get_lines()) == 2 and tuple(fig.get_size_inches()) == (6.5, 3.4), "no rings when asked"
    plt.close(fig)


def test_seed_curves_grid_lays_out_four_candidates_a_row_on_one_scale():
    by_seed = {0: history(val_lIoU=lambda e: 0.1 * e), 1: history(val_lIoU=lambda e: 0.2)}
    fig = seed_curves_grid({f"candidate {i}": by_seed for i in range(5)})
    assert len(fig.axes) == 8 and sum(ax.get_visible() for ax in fig.axes) == 5, "2 rows of 4, 3 cells hidden"
    assert fig.axes[4].get_title() == "candidate 4" and len(fig.axes[4].get_lines()) == 4, "2 seeds, 2 rings"
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[5]), "one y scale for every panel"
    plt.close(fig)


def test_distillation_curves_put_both_loss_panels_on_one_scale():
    without = history(train_loss=lambda e: 100.0 / (e + 1), train_ce=lambda e: 1.0, val_lIoU=lambda e: 0.1 * e)
    with_ = history(train_loss=lambda e: 2.0 / (e + 1), train_ce=lambda e: 0.5, val_lIoU=lambda e: 0.02)
    fig = distillation_curves({"(a) without self-distillation": without, "(b) with self-distillation": with_},
                              title="Fig. 6")
    a, b, c = fig.axes
    assert a.get_ylim() == b.get_ylim(), "the two loss panels should share one y scale"
    assert a.get_ylim()[1] >= 100 and a.get_ylim()[0] <= 0.5, "the scale covers both runs' terms"
    assert [ax.get_title() for ax in fig.axes] == ["(a) without self-distillation", "(b) with self-distillation",
                                                   "(c) validation lIoU"]
    assert [t.get_text() for t in c.get_legend().get_texts()] == ["without self-distillation",
                                                                  "with self-distillation"]
    assert c.get_ylim() == (0, 1.1 * 0.2), "the lIoU panel reaches a tenth above the best epoch"
    plt.close(fig)


def test_prediction_grid_has_a_column_per_model_and_a_row_per_tile():
    images, masks = np.zeros((3, 16, 16, 3), dtype=np.float32), torch.zeros(3, 16, 16, dtype=torch.long)
    masks[:, 4:12, 4:12] = 1
    preds = {"baseline": torch.ones(3, 16, 16, dtype=torch.long), "MRIFE": masks}
    fig = prediction_grid(images, masks, preds, rows=["s1", "s2", "s3"], title="Fig. 4")
    assert len(fig.axes) == 3 * 4, "3 tiles x (input, label, 2 models)"
    assert [ax.get_title() for ax in fig.axes[:4]] == ["(a) input", "(b) label", "(c) baseline", "(d) MRIFE"]
    assert [fig.axes[4 * r].get_ylabel() for r in range(3)] == ["s1", "s2", "s3"], "rows named by their scene"
    drawn = fig.axes[2].images[0].get_array()  # the baseline marks every pixel: white inside, red on the rim
    assert np.allclose(drawn[0, 0], 0.65) and tuple(drawn[4, 4]) == (1.0, 0.0, 0.0)
    plt.close(fig)


def test_block_classes_figure_zooms_and_frames_one_block_of_each_class():
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20:64, 20:64] = 1
    classes = np.zeros((8, 8), dtype=np.int64)  # blocks of 8: background, edge at row/column 2, interior after
    classes[2:, 2:], classes[3:, 3:] = EDGE, INTERIOR
    chosen = {BACKGROUND: (0, 0), EDGE: (2, 3), INTERIOR: (5, 5)}
    fig = block_classes_figure(np.full((64, 64, 3), 0.5), mask, classes, (0, 0), chosen, block=8, size=32)
    a, b, *blocks = fig.axes
    assert a.get_title() == "(a) 64 x 64 sample, block classes" and b.get_title() == "(b) the 32 x 32 part"
    assert [ax.get_title() for ax in blocks] == ["(c) background, n = 0", "(d) edge, n = 32", "(e) interior, n = 64"]
    assert len(b.patches) == 3 and len(b.lines) == 2 * 3, "three framed blocks; a 4 x 4 window's inner grid lines"
    assert b.images[1].get_array().shape == (4, 4), "the zoom shows the window's 4 x 4 blocks"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["edge", "interior", "background"]
    plt.close(fig)


def test_scene_map_draws_the_polygons_in_pixels():
    import affine

    image, mask, probability = np.full((20, 30, 3), 0.5), np.zeros((20, 30), dtype=np.uint8), np.random.rand(20, 30)
    mask[5:10, 5:15] = 1
    to_map = affine.Affine(2.0, 0, 1000.0, 0, -2.0, 500.0)  # 2 m pixels, north up
    ring = [to_map @ xy for xy in ((5, 5), (15, 5), (15, 10), (5, 10), (5, 5))]
    fig = scene_map(image, mask, probability, [{"geometry": {"type": "Polygon", "coordinates": [ring]}}], ~to_map,
                    name="scene 1")
    left, middle, right, _colourbar = fig.axes
    assert [left.get_title(), middle.get_title()] == ["scene 1: label boundary in red", "landslide probability"]
    polygon, = right.get_lines()
    assert np.allclose(polygon.get_xdata(), [5, 15, 15, 5, 5]) and np.allclose(polygon.get_ydata(), [5, 5, 10, 10, 5]), \
        "the polygon's ring should come back to the pixels it was drawn from"
    plt.close(fig)
