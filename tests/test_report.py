"""What the runs' tables say: display formatting, epoch tables, curve readings, leaders,
differences, verdicts, open choices and a profile's settings beside the paper's (mrife.report)."""

import math

import pandas as pd
import pytest

from mrife.claims import Decision, verdict
from mrife.config import RunConfig, describe, load_profile
from mrife.paper import TABLE_II
from mrife.report import (TABLE_II_KEYS, Glue, count_words, epoch_table, format_table, leaders, read_branch,
                          read_choice, read_curve, read_differences, read_heat, read_late, read_pairing, read_seeds,
                          read_verdict_changes, settings_table, table_ii, verdict_counts,
                          verdict_table)
from mrife.tables import compare

PAPER = {"Baseline": {"lIoU": 0.3381, "F1": 0.5054}, "Other": {"lIoU": 0.1, "F1": 0.2}}


def history(val_liou, **terms) -> pd.DataFrame:
    """A run's history.json as a DataFrame, with the given validation lIoU per epoch."""
    n = len(val_liou)
    return pd.DataFrame({"epoch": range(n), "train_loss": [1.0] * n, **terms, "val_lIoU": val_liou,
                         "val_F1": [2 * v / (1 + v) for v in val_liou], "seconds": [60.0] * n})


def test_format_table_writes_four_decimals_and_a_dash_for_empty():
    table = pd.DataFrame({"ours": [0.123456, math.nan], "sd": [math.nan, 0.5], "n": [1, 0]}, index=["a", "b"])
    assert format_table(table).to_dict() == {"ours": {"a": "0.1235", "b": "–"}, "sd": {"a": "–", "b": "0.5000"},
                                             "n": {"a": 1, "b": 0}}
    table.columns = pd.MultiIndex.from_tuples([("lIoU", "ours"), ("lIoU", "sd"), ("lIoU", "n")])
    assert format_table(table)[("lIoU", "ours")].tolist() == ["0.1235", "not run"], "n 0 in a compare table: not run"


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


def test_leaders_name_the_best_row_per_metric():
    table = compare("smoke", {"Baseline": None, "Other": None}, PAPER)
    table[("lIoU", "ours")] = [0.2, 0.3]
    table[("F1", "ours")] = [0.4, 0.4]
    best = leaders(table)
    assert best.loc["lIoU"].tolist() == ["Baseline", "Other", False]
    assert best.loc["F1", "ours"] == "tie: Baseline, Other"
    assert leaders(compare("smoke", {"Baseline": None}, PAPER)).loc["lIoU", "ours"] == "–"


def test_read_differences_says_when_the_interval_holds_zero():
    boot = pd.DataFrame({"value": [0.3, 0.05, -0.2], "low": [0.2, -0.01, -0.3], "high": [0.4, 0.1, -0.1],
                         "share > 0": [float("nan"), 0.9, 0.0]}, index=["A", "A - B", "A - C"])
    lines = read_differences(boot, "lIoU").splitlines()
    assert len(lines) == 2, "model rows are not differences"
    assert "holds 0" in lines[0] and "+0.0500" in lines[0] and "90% of the draws" in lines[0]
    assert "larger than the spread" in lines[1]
    boot["mean"] = [0.3, 0.07, -0.25]  # a bootstrap over seeds: the difference of the seeds' means is stated
    assert "lIoU +0.0700" in read_differences(boot, "lIoU", resampled="the seeds and the test scenes")


def test_a_claim_of_direction_without_a_number_is_read_by_its_sign():
    assert verdict(-0.24, -0.06, math.inf) == "reversed" and verdict(0.01, 0.2, math.inf) == "reproduced"
    table = pd.DataFrame({"metric": ["lIoU", "lIoU"], "paper": [0.0553, math.inf], "ours": [0.01, -0.14],
                          "low": [-0.02, -0.24], "high": [0.04, -0.06], "seeds": ["5 vs 5", "5 vs 3"],
                          "verdict": ["inconclusive", "reversed"], "focus mean": [0.3, 0.27], "focus sd": [0.1, 0.1],
                          "other mean": [0.29, 0.41], "other sd": [0.01, 0.02]}, index=["Table", "Fig."])
    assert verdict_table(table)["paper"].tolist() == ["+0.0553", "ahead (no number)"]


def test_verdicts_are_counted_by_what_their_claims_isolate():
    table = pd.DataFrame({"isolates": ["architecture and ideas", "MRIFE's ideas", "MRIFE's ideas", "MRIFE's ideas",
                                       "architecture and ideas"],
                          "verdict": ["reversed", "inconclusive", "reproduced", "not run: mrife-all", "reversed"]})
    counts = verdict_counts(table)
    assert counts.index.tolist() == ["architecture and ideas", "MRIFE's ideas"], "kinds in order of appearance"
    assert counts.loc["MRIFE's ideas"].tolist() == [1, 1, 0, 1, 3], counts
    assert counts.loc["architecture and ideas"].tolist() == [0, 0, 2, 0, 2], counts
    assert count_words(counts.loc["MRIFE's ideas"]) == \
        "1 of 3 reproduced, 1 inconclusive, none reversed, 1 without a verdict yet"
    assert count_words(counts.loc["architecture and ideas"]) == "0 of 2 reproduced, none inconclusive, 2 reversed"


def test_read_heat_ranks_the_classes_of_each_map_and_checks_the_papers_reading():
    table = pd.DataFrame({"background": [0.182, 0.050, 0.3], "edge": [0.349, 0.021, float("nan")],
                          "interior": [0.591, 0.044, float("nan")]}, index=["seg", "enh", "no landslide"])
    lines = read_heat(table, {"seg": "interior", "enh": "edge"}).splitlines()
    assert lines[0] == ("- **seg**: hottest on interior blocks (0.591), then edge (0.349) and background (0.182); "
                        "where the paper reads it hottest.")
    assert lines[1].startswith("- **enh**: hottest on background blocks (0.050), then interior (0.044) and edge")
    assert lines[1].endswith("; the paper reads it hottest on edge blocks.")
    assert lines[2] == "- **no landslide**: hottest on background blocks (0.300).", "NaN classes are left out"


def test_leaders_ignore_a_row_that_predicts_nothing():
    paper = {"Baseline": {"lIoU": 0.3, "recall": 0.6, "PA": 0.9}, "Other": {"lIoU": 0.4, "recall": 0.5, "PA": 0.8},
             "Empty": {"lIoU": 0.0, "recall": 0.0, "PA": 0.95}}
    table = compare("smoke", {"Baseline": None, "Other": None, "Empty": None}, paper)
    table[("lIoU", "ours")] = [0.2, 0.3, 0.0]
    table[("recall", "ours")] = [0.5, 0.4, 0.0]
    table[("PA", "ours")] = [0.90, 0.80, 0.97]  # predicting nothing on a mostly-background test set
    table[("PA", "sd")] = [0.0, 0.0, 5.0]  # sd and n are not ranked
    best = leaders(table)
    assert best.loc["PA", "ours"] == "Baseline", "a row with recall 0 must not lead PA in ours"
    assert best.loc["PA", "paper"] == "Baseline", "nor in the paper's column"
    assert best.loc["lIoU"].tolist() == ["Other", "Other", True], "the other rows are ranked as before"


def choice(rows: dict) -> pd.DataFrame:
    """A choice_table-like table from candidate -> {seed: best val lIoU} and a decision."""
    table = {}
    for name, (per_seed, decision) in rows.items():
        values = list(per_seed.values())
        default = next(iter(rows.values()))[0]
        paired = pd.Series([v - default[s] for s, v in per_seed.items() if s in default], dtype=float)
        table[name] = {"val lIoU": sum(values) / len(values) if values else math.nan,
                       "sd": pd.Series(values).std() if len(values) > 1 else math.nan, "n": len(values),
                       "decision": decision, "vs default": paired.mean(), "vs default sd": paired.std(),
                       "per seed": per_seed}
    return pd.DataFrame.from_dict(table, orient="index")


def test_read_choice_states_the_decision_and_the_runs_that_never_learned():
    line = read_choice(choice({"default": ({0: 0.30, 1: 0.02, 2: 0.28}, Decision.NONE),
                               "better": ({0: 0.40, 1: 0.41, 2: 0.42}, Decision.CHOSEN),
                               "unrun": ({}, Decision.NOT_RUN)}), "fusion")
    assert "`better` 0.410 ± 0.010 (3 seeds), ahead of `default` 0.200 ± 0.156 (3 seeds)" in line, line
    assert "`better` is chosen (its lead over the default `default`" in line, line
    assert "Seed by seed, `better` minus `default` is +0.210 ± 0.157 (3 seeds; a paired view, not the rule)" in line
    assert "`default` seed 1 (0.020)" in line and "seed 0" not in line, f"only the seed that never learned: {line}"
    assert line.endswith("Not run yet: `unrun`."), line
    line = read_choice(choice({"default": ({0: 0.30, 1: 0.32, 2: 0.31}, Decision.NO_CLEAR_WINNER),
                               "other": ({0: 0.33, 1: 0.30, 2: 0.34}, Decision.WITHIN_NOISE)}), "sfce")
    assert "its lead over the default `default` is within seed noise, so the default stays" in line, line
    assert "`other` minus `default` is +0.013 ± 0.029 (3 seeds" in line, line
    line = read_choice(choice({"default": ({0: 0.30}, Decision.NONE), "other": ({0: 0.33}, Decision.UNDECIDED)}),
                       "x")
    assert "(1 seed)" in line and f"{Decision.UNDECIDED}, nothing is decided yet" in line, line
    assert "minus `default` is +0.030 (1 seed;" in line, line
    assert "no candidate has a finished run" in read_choice(choice({"default": ({}, Decision.NOT_RUN)}), "x")


def test_read_choice_names_the_default_when_it_is_neither_of_the_first_two():
    line = read_choice(choice({"default": ({0: 0.10, 1: 0.12, 2: 0.11}, Decision.NO_CLEAR_WINNER),
                               "a": ({0: 0.40, 1: 0.41, 2: 0.42}, Decision.CHOSEN),
                               "b": ({0: 0.40, 1: 0.42, 2: 0.41}, Decision.NONE)}), "sfce")
    assert "`a` 0.410 ± 0.010 (3 seeds), ahead of `b` 0.410 ± 0.010 (3 seeds); the default `default` 0.110" in line
    line = read_choice(choice({"default": ({0: 0.40, 1: 0.41, 2: 0.42}, Decision.DEFAULT_LEADS),
                               "a": ({0: 0.30, 1: 0.31, 2: 0.32}, Decision.NONE)}), "x")
    assert line.endswith("the default leads, so it stays."), line


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


def test_the_other_sentence_builders_accept_a_model_whose_every_seed_failed_or_a_single_seed():
    failed = pd.DataFrame({"val lIoU": [0.0, 0.01], "sd": [0.0, float("nan")], "n": [2, 1],
                           "decision": ["", ""], "vs default": [float("nan")] * 2,
                           "vs default sd": [float("nan")] * 2,
                           "per seed": [{0: 0.0, 1: 0.0}, {0: 0.01}]}, index=["default", "other"])
    line = read_choice(failed, "c")
    assert "`other` seed 0 (0.010), `default` seed 0 (0.000), `default` seed 1 (0.000)." in line, line
    assert "(1 seed)" in line, line
    assert read_heat(pd.DataFrame({"edge": [float("nan")]}, index=["map"])) == ""
    assert read_heat(pd.DataFrame({"edge": [0.5]}, index=["map"])) == "- **map**: hottest on edge blocks (0.500)."
    history = pd.DataFrame({"val_lIoU": [0.0] * 7})
    assert "has not learned" in read_curve("m", history)


def test_glue_keeps_what_it_glued_to_show_it_where_glue_roles_do_not_render(capsys):
    glue = Glue()
    glue("t3-focus", "0.3090 ± 0.0727", display=False)
    glue("t3-seeds", 5, display=False)
    listing = glue.listing()
    assert list(listing.items()) == [("t3-focus", "0.3090 ± 0.0727"), ("t3-seeds", "5")], "in the order glued"
    assert listing._repr_markdown_() == "- `t3-focus`: 0.3090 ± 0.0727\n- `t3-seeds`: 5"


def test_settings_and_table_ii_say_what_a_profile_changes():
    paper = table_ii(load_profile("paper"))
    assert list(paper.index) == list(TABLE_II_KEYS) == list(TABLE_II)
    assert (paper["paper (Table II)"] == paper["ours (paper)"]).all(), "the paper profile is Table II"
    assert (paper["changed by profile paper"] == "").all()
    cpu = table_ii(load_profile("cpu"))
    assert cpu.loc["epochs", "ours (cpu)"] == 7 and cpu.loc["epochs", "changed by profile cpu"] == "yes"
    assert cpu.loc["lr", "changed by profile cpu"] == "" and cpu.loc["lr", "config key"] == "train.lr"
    settings = settings_table(load_profile("cpu"))
    assert len(settings) == len(describe(RunConfig()))
    changed = set(settings.index[settings["changed by profile cpu"] == "yes"])
    assert {"train.epochs", "data.input_size", "model.backbone"} <= changed and "train.lr" not in changed
    assert settings.loc["model.backbone", "paper profile"] == "resnet101"


def test_read_pairing_counts_the_claims_whose_seeds_go_together_and_the_pairs_on_one_cpu():
    table = pd.DataFrame({"seeds": [3, 3, 2], "same CPU": [3, 1, 0], "r": [0.5, -0.2, math.nan],
                          "paired sd": [0.01, 0.05, 0.02], "independent sd": [0.03, 0.04, 0.03]})
    line = read_pairing(table)
    assert "(r > 0) for **1** of the 3 claims (median r +0.15)" in line, line
    assert "than independent seeds would for **2**" in line, line
    assert "one kind of processor in **4** of the 8 seed pairs" in line, line


def test_read_branch_states_the_gain_seed_by_seed_and_the_runs_without_the_record():
    index = pd.MultiIndex.from_tuples([("B+M+C", 0), ("B+M+C", 1), ("B+M", 0)], names=["model", "seed"])
    table = pd.DataFrame({"whole": [0.40, 0.42, 0.30], "without": [0.38, 0.41, math.nan],
                          "adds": [0.02, 0.01, math.nan], "CPU": ["x", "x", "x"]}, index=index)
    lines = read_branch(table).splitlines()
    assert lines[0] == ("- **B+M+C**: the enhancement branch adds +0.0150 ± 0.0071 over 2 seeds "
                        "(seed 0: +0.0200, seed 1: +0.0100)."), lines
    assert lines[1] == "- **B+M**: its 1 run was trained before the score without the enhancement branch was recorded."


def test_read_verdict_changes_lists_each_claim_whose_verdict_moved():
    before = pd.DataFrame({"verdict": ["inconclusive", "reversed"]}, index=["A", "B"])
    after = pd.DataFrame({"verdict": ["reproduced", "reversed"]}, index=["A", "B"])
    assert read_verdict_changes(before, after, "Pairing by seed") == \
        "Pairing by seed changes **1** of the 2 verdicts:\n\n- A: inconclusive → **reproduced**"
    assert read_verdict_changes(before, before, "Leaving out") == "Leaving out changes **0** of the 2 verdicts."
