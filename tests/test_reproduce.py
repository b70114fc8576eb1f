"""The reproduce runner and the paper-vs-ours tables the chapters read."""

import pandas as pd
import pytest

from mrife.metrics import METRIC_NAMES, metrics_from_counts
from mrife.reproduce import (EXPERIMENTS, compare, experiment_config, leaders,
                             read_differences, reproduce, result, scene_confusions)
from mrife.train import build_splits

TINY = ["data.synthetic_scenes=4", "data.synthetic_size=64", "data.tile_size=64", "data.input_size=32",
        "train.batch_size=2", "train.epochs=1"]
PAPER = {"Baseline": {"lIoU": 0.3381, "F1": 0.5054}, "Other": {"lIoU": 0.1, "F1": 0.2}}


def test_every_experiment_is_known_and_distinct():
    configs = [experiment_config("smoke", e) for e in EXPERIMENTS]
    assert len({repr(c) for c in configs}) == len(EXPERIMENTS), "two experiments resolve to one config"
    with pytest.raises(KeyError, match="deeplabv3plus"):
        experiment_config("smoke", "nope")


def test_missing_run_says_how_to_produce_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mrife reproduce --profile smoke"):
        result("smoke", "segbranch", root=tmp_path)
    table = compare("smoke", {"Baseline": "segbranch"}, PAPER, root=tmp_path)
    assert table.loc["Baseline", ("lIoU", "ours")] == "not run", "a missing run must show no number"
    assert table.loc["Baseline", ("lIoU", "paper")] == 0.3381


def test_reproduce_writes_runs_the_tables_read(tmp_path, monkeypatch):
    # The tiny overrides go into the profile so that result() finds the same config hash.
    from mrife import config

    monkeypatch.setitem(config.PROFILES, "smoke", [*config.PROFILES["smoke"], *TINY])
    runs = reproduce("smoke", tmp_path, ["segbranch"], progress=False)
    assert (tmp_path / "smoke" / "index.json").exists(), "the index of finished runs is missing"
    res = result("smoke", "segbranch", root=tmp_path)
    assert res.run == runs["segbranch"] and len(res.history) == 1
    table = compare("smoke", {"Baseline": "segbranch", "Other": None}, PAPER, root=tmp_path)
    assert table.loc["Baseline", ("F1", "ours")] == res.test["F1"], "ours must be the run's test metric"
    assert table.loc["Other", ("F1", "ours")] == "not run"
    # Per-scene counts of the best checkpoint pool back to the run's own test metrics.
    per_scene = scene_confusions({"seg": res})
    assert set(per_scene["seg"]) == {tile.scene for tile in build_splits(res.config)["test"]}
    pooled = metrics_from_counts(*(sum(c) for c in zip(*(cm.counts for cm in per_scene["seg"].values()))))
    assert {m: float(pooled[m]) for m in METRIC_NAMES} == pytest.approx({m: res.test[m] for m in METRIC_NAMES})


def test_leaders_name_the_best_row_per_metric():
    table = compare("smoke", {"Baseline": None, "Other": None}, PAPER)
    table[("lIoU", "ours")] = [0.2, 0.3]
    table[("F1", "ours")] = [0.4, 0.4]
    best = leaders(table)
    assert best.loc["lIoU"].tolist() == ["Baseline", "Other", False]
    assert best.loc["F1", "ours"] == "tie: Baseline, Other"
    assert leaders(compare("smoke", {"Baseline": None}, PAPER)).loc["lIoU", "ours"] == "–"


def test_compare_refuses_a_misspelt_experiment(tmp_path):
    with pytest.raises(KeyError, match=r"unknown experiments \['mrfie'\].*valid: deeplabv3plus"):
        compare("smoke", {"MRIFE": "mrfie"}, PAPER, root=tmp_path)


def test_read_differences_says_when_the_interval_holds_zero():
    boot = pd.DataFrame({"value": [0.3, 0.05, -0.2], "low": [0.2, -0.01, -0.3], "high": [0.4, 0.1, -0.1],
                         "share > 0": [float("nan"), 0.9, 0.0]}, index=["A", "A - B", "A - C"])
    lines = read_differences(boot, "lIoU").splitlines()
    assert len(lines) == 2, "model rows are not differences"
    assert "holds 0" in lines[0] and "+0.0500" in lines[0] and "90% of the draws" in lines[0]
    assert "larger than the spread" in lines[1]
