"""The reproduce runner and the paper-vs-ours tables the chapters read."""

import pytest

from mrife.reproduce import EXPERIMENTS, available_experiments, compare, experiment_config, reproduce, result

TINY = ["data.synthetic_scenes=4", "data.synthetic_size=64", "data.tile_size=64", "data.input_size=32",
        "train.batch_size=2", "train.epochs=1"]
PAPER = {"Baseline": {"lIoU": 0.3381, "F1": 0.5054}, "Other": {"lIoU": 0.1, "F1": 0.2}}


def test_every_experiment_is_known_and_distinct():
    assert set(available_experiments()) == set(EXPERIMENTS), "a book experiment names a model mrife lacks"
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
