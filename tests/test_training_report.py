"""How runs trained, in tables and words: the epoch table, the reading of a validation
curve, what runs lost after their best epoch and which seeds never learned
(mrife.training_report)."""

import math

import pandas as pd
import pytest

from mrife.training_report import epoch_table, never_learned, read_curve, read_late, read_seeds


def history(val_liou, **terms) -> pd.DataFrame:
    """A run's history.json as a DataFrame, with the given validation lIoU per epoch."""
    n = len(val_liou)
    return pd.DataFrame({"epoch": range(n), "train_loss": [1.0] * n, **terms, "val_lIoU": val_liou,
                         "val_F1": [2 * v / (1 + v) for v in val_liou], "seconds": [60.0] * n})


def test_epoch_table_counts_epochs_from_one_and_drops_all_zero_terms():
    table = epoch_table(history([0.1, 0.2], train_cons=[0.0, 0.0], train_ce=[0.5, 0.4]))
    assert table.index.tolist() == [1, 2], "epochs are shown from 1"
    assert table.columns.tolist() == ["loss", "ce", "val_lIoU", "val_F1", "seconds"], "a term that is all zero is dropped"


@pytest.mark.parametrize("curve, expected", [
    ([0.0, 0.1, 0.2, 0.3, 0.35, 0.4], "still rising"),
    ([0.0, 0.1, 0.3, 0.35, 0.345, 0.352], "levels off"),
    ([0.0, 0.1, 0.3, 0.40, 0.2, 0.25], "falls back"),
    ([0.0, 0.01, 0.02, 0.0, 0.01, 0.03], "has not learned"),
    ([0.1, 0.3, 0.4], "too few epochs"),
])
def test_read_curve_tells_rising_plateau_falling_and_never_learned(curve, expected):
    line = read_curve("model", history(curve))
    assert expected in line, f"{curve} should read as {expected!r}: {line}"
    assert f"best validation lIoU {max(curve):.4f} at epoch {curve.index(max(curve)) + 1} of {len(curve)}" in line


def test_read_curve_needs_only_the_validation_lIoU():
    assert "has not learned" in read_curve("m", pd.DataFrame({"val_lIoU": [0.0] * 7}))


def test_read_seeds_names_each_seed_that_never_learned():
    index = pd.MultiIndex.from_tuples([("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 3)], names=["model", "seed"])
    table = pd.DataFrame({"best val lIoU": [0.3, 0.4, 0.35, 0.25, 0.01], "test lIoU": [0.3, 0.4, 0.3, 0.2, 0.02],
                          "learned": [True, True, True, True, False], "first epoch": [3, 1, 2, 4, pd.NA]},
                         index=index).astype({"first epoch": "Int64"})
    lines = read_seeds(table).splitlines()
    assert lines == [
        "- **A**: every one of its 3 seeds learned (best validation lIoU 0.300 to 0.400), first reaching 0.05 "
        "at epoch 1, 2 and 3.",
        "- **B**: 1 of its 2 seeds never learned (best validation lIoU below 0.05; seed 3: 0.010, test lIoU 0.020); "
        "the other one first reached 0.05 at epoch 4.",
    ], lines


def test_never_learned_counts_the_runs_that_never_learned_and_names_them():
    index = pd.MultiIndex.from_tuples([("A", 0), ("A", 1), ("B", 3)], names=["model", "seed"])
    table = pd.DataFrame({"learned": [True, False, False]}, index=index)
    assert never_learned(table) == "2 of 3 (A seed 1, B seed 3)"
    assert never_learned(table.assign(learned=True)) == "none of 3"


def _best_and_last(rows):
    """A :func:`mrife.tables.best_and_last` table from ``(model, seed, best epoch, lIoU, AP, recall, precision)``,
    each metric a pair (at best, at last), over 27 epochs."""
    index = pd.MultiIndex.from_tuples([(m, s) for m, s, *_ in rows], names=["model", "seed"])
    columns = {"best epoch": [r[2] for r in rows], "epochs": [27] * len(rows)}
    for i, metric in enumerate(("val_lIoU", "val_AP", "val_recall", "val_precision")):
        for j, when in enumerate(("best", "last")):
            columns[f"{metric} at {when}"] = [r[3 + i][j] for r in rows]
    return pd.DataFrame(columns, index=index)


def test_read_late_tells_a_lost_ranking_from_a_lost_threshold():
    nan = (math.nan, math.nan)
    lines = read_late(_best_and_last([
        ("kept", 0, 26, (0.4, 0.36), (0.5, 0.4), (0.6, 0.4), (0.5, 0.5)),  # a fall of 0.04 and less: kept
        ("ranking", 0, 5, (0.4, 0.1), (0.5, 0.45), (0.6, 0.1), (0.5, 0.5)),
        ("threshold", 0, 6, (0.4, 0.2), (0.52, 0.58), (0.7, 0.2), (0.5, 0.7)),
        ("threshold", 1, 8, (0.4, 0.2), (0.52, 0.58), (0.7, 0.2), (0.5, 0.7)),
        ("background", 0, 5, (0.4, 0.3), (0.5, 0.5), (0.6, 0.6), (0.6, 0.4)),
        ("unrecorded", 0, 5, (0.4, 0.3), nan, (0.6, 0.5), (0.5, 0.5)),
    ])).splitlines()
    assert lines[0] == "- **kept**: best validation lIoU at epoch 26 of 27; its last epoch ends within 0.05 of its " \
                       "best (0.400 to 0.360, its one seed, mean).", lines
    assert lines[1].endswith("its lIoU falls from 0.400 to 0.100 (its one seed, mean), and its average precision "
                             "with it (0.500 to 0.450): it ranks landslide pixels worse than at its best epoch."), lines
    assert lines[2] == (
        "- **threshold**: best validation lIoU at epoch 6 and 8 of 27; from there to its last epoch its lIoU falls "
        "from 0.400 to 0.200 (its 2 seeds, mean), while its average precision does not (0.520 to 0.580): it ranks "
        "landslide pixels as well as at its best epoch but marks fewer of them at the 0.5 threshold "
        "(recall 0.700 to 0.200)."), lines
    assert lines[3].endswith("marks more background at the 0.5 threshold (precision 0.600 to 0.400)."), lines
    assert lines[4].endswith("(its one seed, mean); its average precision was not recorded."), lines


def _seed_table(rows):
    """A :func:`mrife.tables.seed_table` from ``(model, seed, best val, test, first epoch or None)``."""
    index = pd.MultiIndex.from_tuples([(m, s) for m, s, *_ in rows], names=["model", "seed"])
    return pd.DataFrame({"best val lIoU": [r[2] for r in rows], "test lIoU": [r[3] for r in rows],
                         "learned": [r[4] is not None for r in rows],
                         "first epoch": [pd.NA if r[4] is None else r[4] for r in rows]},
                        index=index).astype({"first epoch": "Int64"})


def test_read_seeds_says_in_words_when_no_seed_of_a_model_learned():
    table = _seed_table([("A", 0, 0.0, 0.0, None), ("A", 1, 0.01, 0.02, None), ("B", 0, 0.0, 0.0, None)])
    assert read_seeds(table).splitlines() == [
        "- **A**: none of its 2 seeds learned (best validation lIoU below 0.05; seed 0: 0.000, test lIoU 0.000; "
        "seed 1: 0.010, test lIoU 0.020): at this profile the model has not learned to find landslides.",
        "- **B**: its one seed never learned (best validation lIoU below 0.05; seed 0: 0.000, test lIoU 0.000): "
        "at this profile the model has not learned to find landslides.",
    ]


def test_read_seeds_of_a_model_with_one_seed_that_learned():
    assert read_seeds(_seed_table([("A", 2, 0.3, 0.25, 4)])) == (
        "- **A**: its one seed learned (best validation lIoU 0.300), first reaching 0.05 at epoch 4.")
