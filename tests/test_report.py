"""What the runs' tables say: display formatting, leaders, differences, verdicts, open
choices and a profile's settings beside the paper's (mrife.report)."""

import math

import pandas as pd

from mrife.claims import Decision, verdict
from mrife.config import RunConfig, describe, load_profile
from mrife.paper import TABLE_II
from mrife.report import (TABLE_II_KEYS, Glue, count_words, format_table, join_and, leaders, profile_change_words,
                          read_branch, read_choice, read_differences, read_heat, read_pairing,
                          read_verdict_changes, settings_table, table_ii, verdict_counts, verdict_table)
from mrife.tables import compare

PAPER = {"Baseline": {"lIoU": 0.3381, "F1": 0.5054}, "Other": {"lIoU": 0.1, "F1": 0.2}}


def test_format_table_writes_four_decimals_and_a_dash_for_empty():
    table = pd.DataFrame({"ours": [0.123456, math.nan], "sd": [math.nan, 0.5], "n": [1, 0]}, index=["a", "b"])
    assert format_table(table).to_dict() == {"ours": {"a": "0.1235", "b": "–"}, "sd": {"a": "–", "b": "0.5000"},
                                             "n": {"a": 1, "b": 0}}
    table.columns = pd.MultiIndex.from_tuples([("lIoU", "ours"), ("lIoU", "sd"), ("lIoU", "n")])
    assert format_table(table)[("lIoU", "ours")].tolist() == ["0.1235", "not run"], "n 0 in a compare table: not run"


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
    assert cpu.loc["epochs", "ours (cpu)"] == 27 and cpu.loc["epochs", "changed by profile cpu"] == "yes"
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


def test_join_and_lists_items_as_a_sentence_does():
    assert [join_and(items) for items in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == ["", "a", "a and b", "a, b and c"]


def test_read_verdict_changes_lists_each_claim_whose_verdict_moved():
    before = pd.DataFrame({"verdict": ["inconclusive", "reversed"]}, index=["A", "B"])
    after = pd.DataFrame({"verdict": ["reproduced", "reversed"]}, index=["A", "B"])
    assert read_verdict_changes(before, after, "Pairing by seed") == \
        "Pairing by seed changes **1** of the 2 verdicts:\n\n- A: inconclusive → **reproduced**"
    assert read_verdict_changes(before, before, "Leaving out") == "Leaving out changes **0** of the 2 verdicts."


def test_profile_change_words_say_which_side_of_each_claim_moved():
    ideas, both = "MRIFE's ideas", "architecture and ideas"
    before = pd.DataFrame({"verdict": ["reversed", "inconclusive", "inconclusive", "reproduced"],
                           "isolates": [both, ideas, ideas, ideas]})
    after = before.assign(verdict=["inconclusive", "reproduced", "reproduced", "reproduced"])
    columns = pd.MultiIndex.from_tuples([("7 epochs", "mean"), ("7 epochs", "sd"), ("plateau", "mean"),
                                         ("plateau", "sd"), ("change", "")])
    sides = pd.DataFrame([[0.40, 0.10, 0.43, 0.02, 0.03], [0.20, 0.20, 0.30, 0.01, 0.10],
                          [0.40, 0.05, 0.42, 0.06, 0.02]], index=["deeplabv3plus", "segbranch", "mrife"],
                         columns=columns)
    assert profile_change_words(before, after, sides) == {
        "moved": "3 of 4", "baseline-gain": "+0.030", "gained-more": "1 of 2",
        "gains": "+0.020 (`mrife`) to +0.100 (`segbranch`)", "sd-before": "0.100", "sd-after": "0.020",
        "sd-narrower": "2 of 3", "moved-isolates": "2 isolate MRIFE's ideas and 1 isolates architecture and ideas"}
    still = profile_change_words(before, before, sides)
    assert still["moved"] == "0 of 4" and still["moved-isolates"] == "none"
