"""The reproduce runner and the paper-vs-ours tables the chapters read."""

import json
import logging
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from torch.utils.data import DataLoader

from mrife import paper
from mrife.cli import main
from mrife.config import load_profile, save_yaml
from mrife.data import TileDataset
from mrife.evaluation import confusion_by_scene
from mrife.experiments import (CANDIDATES, CHOICES, EXPERIMENTS, PROFILE_EXPERIMENTS, REPRODUCTION_HOURS, SEEDS,
                               TABLE_EXPERIMENTS, TABLE_SEEDS, candidates, decided_at, experiment_config, seeds_for)
from mrife.claims import Decision, plateau_epoch
from mrife.report import claim_words, verdict_table
from mrife.loaders import build_splits
from mrife.metrics import METRIC_NAMES, metrics_from_counts
from mrife.reproduce import check, epochs_within, plan, reproduce, seed_order
from mrife.results import (epoch_times, finished, reproduction_time, result, results, run_times, scene_confusions,
                           seed_scene_confusions, sizing_runs)
from mrife.runs import changed_tree, epoch_seconds, load_run, run_dir_for
from mrife.tables import (best_and_last, best_val_by_profile, branch_table, choice_table, compare, seed_bootstrap,
                          seed_pairing, seed_table, verdicts)
from mrife.train import expected_time, fit

PAPER = {"Baseline": {"lIoU": 0.3381, "F1": 0.5054}, "Other": {"lIoU": 0.1, "F1": 0.2}}


def test_every_experiment_is_known_and_distinct():
    configs = [experiment_config("smoke", e) for e in EXPERIMENTS]
    assert len({repr(c) for c in configs}) == len(EXPERIMENTS), "two experiments resolve to one config"
    with pytest.raises(KeyError, match="deeplabv3plus"):
        experiment_config("smoke", "nope")


def test_every_claim_of_the_paper_compares_two_known_experiments_on_a_metric_with_a_side():
    for label, focus, other, metric, difference, _ in paper.CLAIMS + paper.DIRECTION_CLAIMS:
        assert focus in EXPERIMENTS and other in EXPERIMENTS and focus != other, label
        assert metric in METRIC_NAMES and difference and not math.isnan(difference), label
    assert all(claim.paper == math.inf for claim in paper.DIRECTION_CLAIMS), "no number: +inf, focus ahead"


def test_every_claim_says_what_it_isolates():
    """Against DeepLabv3+ (smp's model) a claim measures architecture and ideas together;
    between models of our segmentation network it measures ideas: MRIFE's, or MRIFE's
    against ICSSN's."""
    for claim in paper.CLAIMS + paper.DIRECTION_CLAIMS:
        sides = {claim.focus, claim.other}
        expected = (paper.ARCHITECTURE_AND_IDEAS if "deeplabv3plus" in sides
                    else paper.IDEAS_VS_ICSSN if "icssn" in sides else paper.IDEAS)
        assert claim.isolates == expected, f"{claim.label}: isolates {claim.isolates!r}, expected {expected!r}"
    whole = [c for c in paper.CLAIMS if (c.focus, c.other) == ("mrife", "segbranch")]
    assert len(whole) == 1 and whole[0].paper == pytest.approx(0.3934 - 0.3381), \
        "MRIFE over its segmentation branch is a claim, with Table IV's B+M+C - B"
    table_iv = [c for c in paper.CLAIMS if c.label.startswith("Table IV")]
    assert {"segbranch"} == {c.other for c in table_iv} - {"mrife-mfm"}, \
        f"Table IV's B is the segmentation branch in every claim: {table_iv}"


def test_plan_lists_the_runs_still_missing_with_their_expected_time(tmp_path):
    seconds = {"deeplabv3plus": 10.0, "segbranch": 20.0, "mrife": 40.0}
    todo = plan("cpu-sizing", seconds, root=tmp_path)
    assert list(zip(todo["seed"], todo["experiment"])) == [(0, "deeplabv3plus"), (0, "segbranch"), (0, "mrife"),
                                                          (1, "deeplabv3plus"), (1, "segbranch"), (1, "mrife")], \
        f"every run of the profile, seed by seed, as reproduce trains them: {todo}"
    assert todo["expected (s)"].tolist() == [300.0, 600.0, 1200.0] * 2, "30 epochs x the model's epoch seconds"
    cfg = experiment_config("cpu-sizing", "mrife", seed=1)  # make it a finished run of 2 epochs of 5 and 7 s
    run = run_dir_for(cfg, tmp_path / "cpu-sizing")
    run.mkdir(parents=True)
    save_yaml(cfg, run / "config.yaml")
    (run / "history.json").write_text(json.dumps([{"epoch": 0, "seconds": 5.0}, {"epoch": 1, "seconds": 7.0}]))
    (run / "test_metrics.json").write_text("{}")
    (run / "provenance.json").write_text(json.dumps({"processor": "AMD EPYC"}))
    assert (1, "mrife") not in set(zip(*plan("cpu-sizing", seconds, root=tmp_path)[["seed", "experiment"]].values.T)), \
        "a finished run is not planned"
    assert epoch_seconds(tmp_path / "cpu-sizing") == {"mrife": 6.0}, "the median epoch of the finished runs, by model"
    assert epoch_seconds(tmp_path / "cpu-sizing", "AMD EPYC") == {"mrife": 6.0} and \
        epoch_seconds(tmp_path / "cpu-sizing", "Intel Xeon") == {}, "the runs of one processor, when asked"
    assert "10 epochs to train: about 1 min at 6 s an epoch" in expected_time(cfg, tmp_path / "cpu-sizing", 10), \
        "training says at its start what it is expected to take, timed by the finished runs"
    assert "after the first" in expected_time(experiment_config("cpu-sizing", "segbranch"), tmp_path / "cpu-sizing", 3)
    unknown = plan("cpu-sizing", {}, root=tmp_path, experiments=["segbranch"], seeds=[3])
    assert len(unknown) == 1 and math.isnan(unknown["expected (s)"].iloc[0]), "no measured epoch: no guess"


def test_seeds_trained_on_another_kind_of_processor_go_last(tmp_path):
    """A seed is the same draw of training noise for two models only on one kind of
    processor: a seed whose runs so far ran mostly elsewhere waits for a machine of that kind."""
    assert seed_order(tmp_path, [1, 0], "X") == ([0, 1], []), "no run yet: by seed"
    kinds = {"a0": "Y", "a1": "X", "b1": "X", "a2": "X", "b2": "Y", "a3": None}  # a3: on a GPU, no cpu_kind
    for run, kind in kinds.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "provenance.json").write_text(json.dumps({"cpu_kind": kind, "processor": "NVIDIA H200"}))
    index = {"a": {"0": "a0", "1": "a1", "2": "a2", "3": "a3"}, "b": {"1": "b1", "2": "b2"}}
    (tmp_path / "index.json").write_text(json.dumps(index))
    assert seed_order(tmp_path, [0, 1, 2, 3, 4], "X") == ([1, 2, 4, 0, 3], [0, 3]), \
        "seed 0 ran on Y and seed 3 on the GPU; seed 2 is tied, so it stays; seed 4 has no run"
    assert seed_order(tmp_path, [0, 1, 2, 3, 4], "Y") == ([0, 2, 4, 1, 3], [1, 3])
    assert seed_order(tmp_path, [0, 1, 2, 3, 4], "NVIDIA H200") == ([3, 4, 0, 1, 2], [0, 1, 2])
    folder = tmp_path / "cpu-sizing"
    folder.mkdir()
    (tmp_path / "a0").rename(folder / "a0")
    (folder / "index.json").write_text(json.dumps({"mrife": {"0": "a0"}}))
    todo = plan("cpu-sizing", {}, root=tmp_path, experiments=["segbranch"], here="X")
    assert todo["seed"].tolist() == [1, 0], f"the plan follows the order reproduce takes: {todo}"
    assert plan("cpu-sizing", {}, root=tmp_path, experiments=["segbranch"])["seed"].tolist() == [0, 1]


def test_a_run_without_a_progress_bar_says_its_expected_time_in_the_log(tmp_path, caplog, tiny):
    cfg = load_profile("smoke", [*tiny, "model.name=segbranch"])
    with caplog.at_level(logging.INFO, logger="mrife.train"):
        fit(cfg, tmp_path, progress=False)
    assert "1 epochs to train" in caplog.text, "a log without bars still says what the run will take"


def test_the_epoch_count_within_a_budget_counts_every_run_finished_or_not(tmp_path):
    seconds = {"deeplabv3plus": 10.0, "segbranch": 20.0, "mrife": 40.0}  # 2 seeds each: 140 s an epoch of all
    assert epochs_within("cpu-sizing", seconds, 30, hours=24) == (30, pytest.approx(30 * 140 / 3600), 6), \
        "within the budget: the rule's epochs, over the 6 runs of the profile"
    assert epochs_within("cpu-sizing", seconds, 60, hours=1)[:2] == (38, pytest.approx(38 * 140 / 3600)), \
        "over it: the largest count whose time rounds to the budget's hour (38 x 140 s = 1.48 h; 39: 1.52 h)"
    with pytest.raises(ValueError, match="mrife"):
        epochs_within("cpu-sizing", {"deeplabv3plus": 10.0, "segbranch": 20.0}, 30, hours=24)


def test_reproduce_plan_prints_the_missing_runs_and_trains_nothing(tmp_path, capsys):
    assert main(["reproduce", "--profile", "cpu-sizing", "--plan", "--out", str(tmp_path), "--only", "segbranch"]) == 0
    out = capsys.readouterr().out
    assert "segbranch     0" in out and "2 runs to train" in out and "not counted: segbranch" in out, out
    assert not (tmp_path / "cpu-sizing").exists() or not any((tmp_path / "cpu-sizing").iterdir()), "nothing trained"


def test_missing_run_says_how_to_produce_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mrife reproduce --profile smoke"):
        result("smoke", "segbranch", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="mrife reproduce --profile smoke"):
        results("smoke", "segbranch", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="--seeds 7"):
        result("smoke", "segbranch", root=tmp_path, seed=7)
    table = compare("smoke", {"Baseline": "segbranch"}, PAPER, root=tmp_path)
    assert math.isnan(table.loc["Baseline", ("lIoU", "ours")]), "a missing run must show no number"
    assert table.loc["Baseline", ("lIoU", "n")] == 0, "a missing run has 0 seeds"
    assert table.loc["Baseline", ("lIoU", "paper")] == 0.3381
    assert list(table.columns.get_level_values("source")[:4]) == ["paper", "ours", "sd", "n"], \
        "columns per metric: paper, ours, sd, n"


def test_the_branch_table_reads_what_the_enhancement_branch_adds_seed_by_seed(tmp_path, tiny_smoke):
    reproduce("smoke", tmp_path, ["mrife", "segbranch"], progress=False)
    table = branch_table("smoke", {"MRIFE": "mrife", "B": "segbranch", "none": "mrife-mfm"}, root=tmp_path)
    assert table.index.tolist() == [("MRIFE", 0), ("B", 0)], "a row per finished run"
    test = result("smoke", "mrife", root=tmp_path).test
    assert table.loc[("MRIFE", 0)].drop("CPU").tolist() == pytest.approx(
        [test["lIoU"], test["enhancement_off_lIoU"], test["lIoU"] - test["enhancement_off_lIoU"]])
    assert math.isnan(table.loc[("B", 0), "without"]), "a model with nothing to switch off has no such score"
    assert table.loc[("MRIFE", 0), "CPU"] == result("smoke", "mrife", root=tmp_path).cpu != ""


def test_reproduce_writes_runs_the_tables_read(tmp_path, capsys, tiny_smoke):
    runs = reproduce("smoke", tmp_path, ["segbranch"], progress=False)
    assert (tmp_path / "smoke" / "index.json").exists(), "the index of finished runs is missing"
    res = result("smoke", "segbranch", root=tmp_path)
    assert res.run == runs["segbranch"][0] and len(res.history) == 1, "smoke's one seed is 0, trained 1 epoch"
    table = compare("smoke", {"Baseline": "segbranch", "Other": None}, PAPER, root=tmp_path)
    assert table.loc["Baseline", ("F1", "ours")] == res.test["F1"], "ours must be the run's test metric"
    assert table.loc["Baseline", ("F1", "n")] == 1 and math.isnan(table.loc["Baseline", ("F1", "sd")]), \
        "one seed: n 1 and no sd expected"
    assert math.isnan(table.loc["Other", ("F1", "ours")]) and table.loc["Other", ("F1", "n")] == 0
    times = run_times({"seg": res})
    provenance = json.loads((res.run / "provenance.json").read_text())
    assert times.loc["seg", "wall time (s)"] == provenance["wall_time_s"] and times.loc["seg", "epochs"] == 1
    assert times.loc["seg", "commit"] == provenance["git_commit"][:10]
    assert times.loc["seg", "clean tree"] == ("yes" if provenance["git_dirty"] is False else "no")
    spent = reproduction_time("smoke", root=tmp_path)
    assert spent.index.tolist() == [res.cpu, "all"] and spent.loc[res.cpu, "runs"] == 1, spent
    assert spent.loc["all", "hours"] == pytest.approx(provenance["wall_time_s"] / 3600), "wall time, in hours"
    epochs = epoch_times("smoke", root=tmp_path)
    assert epochs.index.tolist() == ["segbranch"] and epochs.columns.tolist() == [res.cpu], epochs
    assert epochs.loc["segbranch", res.cpu] == res.history["seconds"].median(), "the median epoch, in seconds"
    capsys.readouterr()
    found = finished("smoke", {"B": "segbranch", "M": "mrife"}, root=tmp_path)
    assert list(found) == ["B"] and found["B"].run == res.run, "finished() keeps the finished run, by label"
    assert capsys.readouterr().out.startswith("M: no finished run of 'mrife'"), "a missing run is reported"
    # The per-scene counts the run kept are its best checkpoint's on the test split, and
    # they pool back to the run's own test metrics.
    per_scene = scene_confusions({"seg": res})
    test = build_splits(res.config)["test"]
    assert set(per_scene["seg"]) == {tile.scene for tile in test}
    loader = DataLoader(TileDataset(test, res.config.data.input_size), batch_size=4)
    again = confusion_by_scene(load_run(res.run)[1], loader)
    assert {s: cm.counts for s, cm in again.items()} == {s: cm.counts for s, cm in per_scene["seg"].items()}, \
        "test_confusions.json must hold the best checkpoint's counts"
    pooled = metrics_from_counts(*(sum(c) for c in zip(*(cm.counts for cm in per_scene["seg"].values()))))
    assert {m: float(pooled[m]) for m in METRIC_NAMES} == pytest.approx({m: res.test[m] for m in METRIC_NAMES})


def test_compare_refuses_a_misspelt_experiment(tmp_path):
    with pytest.raises(KeyError, match=r"unknown experiments \['mrfie'\].*valid: deeplabv3plus"):
        compare("smoke", {"MRIFE": "mrfie"}, PAPER, root=tmp_path)


def test_default_seeds_per_profile_and_experiment():
    assert seeds_for("smoke", "mrife") == (0,), "smoke trains one seed"
    assert seeds_for("cpu", "mrife-concat") == SEEDS["cpu"] == (0, 1, 2), "cpu trains 3 seeds"
    for experiment in TABLE_EXPERIMENTS:
        assert seeds_for("paper", experiment) == TABLE_SEEDS["paper"] == (0, 1, 2, 3, 4), \
            f"{experiment} is in Table III or IV: 5 seeds expected"
    assert set(TABLE_EXPERIMENTS) == {"deeplabv3plus", "mrife", "icssn", "segbranch", "mrife-mfm"}
    assert experiment_config("cpu", "mrife", seed=3).seed == 3, "the seed is applied as seed=N"
    assert repr(experiment_config("cpu", "mrife", seed=0)) == repr(experiment_config("cpu", "mrife")), \
        "seed 0 is the profile's own seed"


def test_cli_help_states_the_default_seeds(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("0 at smoke", "0 1 2 at cpu and paper", "0 1 2 3 4 for the experiments of Tables III and IV"):
        assert needle in text, f"--seeds help must say {needle!r}"


def test_reproduce_over_two_seeds(tmp_path, monkeypatch, tiny_smoke):
    # An alias of segbranch: the same config, so the same run directories (nothing to train).
    monkeypatch.setitem(EXPERIMENTS, "segbranch-alias", list(EXPERIMENTS["segbranch"]))
    runs = reproduce("smoke", tmp_path, ["segbranch"], progress=False, seeds=[0, 1])
    assert sorted(runs["segbranch"]) == [0, 1], "one run per seed expected"
    assert runs["segbranch"][0] != runs["segbranch"][1], "each seed must have its own run directory"
    assert all((run / "test_metrics.json").exists() for run in runs["segbranch"].values()), "both runs finished"
    index = json.loads((tmp_path / "smoke" / "index.json").read_text())
    assert index == {"segbranch": {"0": runs["segbranch"][0].name, "1": runs["segbranch"][1].name}}, \
        f"index.json must map experiment -> seed -> run directory, got {index}"

    found = results("smoke", "segbranch", root=tmp_path)  # seed 1 is not smoke's default: found via the index
    assert [res.seed for res in found] == [0, 1], "results must find both seeds"
    assert result("smoke", "segbranch", root=tmp_path, seed=1).run == runs["segbranch"][1]
    table = compare("smoke", {"Baseline": "segbranch"}, PAPER, root=tmp_path)
    f1 = [res.test["F1"] for res in found]
    assert table.loc["Baseline", ("F1", "ours")] == pytest.approx(sum(f1) / 2), "ours must be the mean over seeds"
    assert table.loc["Baseline", ("F1", "n")] == 2, "n must count the two seeds"
    assert table.loc["Baseline", ("F1", "sd")] == pytest.approx(abs(f1[0] - f1[1]) / math.sqrt(2)), \
        "sd must be over seeds, ddof 1"

    per_seed = seed_scene_confusions({"seg": found})
    assert sorted(per_seed["seg"]) == [0, 1], "seed_scene_confusions must key each label by seed"
    for res in found:  # each seed's scenes pool back to that run's own test metrics
        counts = [cm.counts for cm in per_seed["seg"][res.seed].values()]
        pooled = metrics_from_counts(*(sum(c) for c in zip(*counts)))
        assert float(pooled["F1"]) == pytest.approx(res.test["F1"]), f"seed {res.seed}: scenes must pool to its F1"

    alias = reproduce("smoke", tmp_path, ["segbranch-alias"], progress=False, seeds=[0, 1])
    assert alias["segbranch-alias"] == runs["segbranch"], "the alias's runs are segbranch's, found finished"
    claims = [("alias", "segbranch", "segbranch-alias", "lIoU", 0.05),
              ("missing", "mrife", "segbranch", "F1", 0.05)]
    table = verdicts("smoke", claims, root=tmp_path, draws=200)
    row = table.loc["alias"]
    assert row["ours"] == 0 and row["low"] <= 0 <= row["high"], "the same runs twice must differ by 0 on average"
    assert row["verdict"] == "inconclusive" and row["seeds"] == "2 vs 2", f"expected inconclusive over 2 vs 2: {row}"
    assert table.loc["missing", "verdict"] == "not run: mrife", "a claim on an experiment not run has no verdict"
    lious = [r.test["lIoU"] for r in found]
    assert row["focus mean"] == pytest.approx(sum(lious) / 2) and row["focus mean"] == row["other mean"], \
        "each side's mean is over its seeds' test metric"
    assert row["focus sd"] == pytest.approx(abs(lious[0] - lious[1]) / 2 ** 0.5), "sd over seeds, ddof 1"
    together = verdicts("smoke", claims, root=tmp_path, draws=200, paired=True)
    assert together.loc["alias", ["ours", "low", "high"]].tolist() == [0, 0, 0] and \
        together.loc["alias", "seeds"] == "2 paired", "the same runs seed by seed differ by exactly 0 on every draw"
    assert together.loc["missing", "verdict"] == "not run: mrife", "pairing leaves a claim not run as it is"
    shown = verdict_table(table)
    assert shown.loc["alias", "ours: difference"] == "+0.0000" and shown.loc["missing", "ours: focus"] == "–"
    assert shown.loc["alias", "ours: focus"] == f"{row['focus mean']:.4f} ± {row['focus sd']:.4f}"
    assert "90% interval" in shown.columns and shown.loc["alias", "verdict"] == "inconclusive"
    assert table.loc["alias", "isolates"] == "" and shown.loc["alias", "isolates"] == "–", \
        "a claim of bare fields isolates nothing it can name"
    named = verdicts("smoke", [paper.Claim(*claims[0][:5], isolates=paper.IDEAS)], root=tmp_path, draws=200)
    assert named.loc["alias", "isolates"] == paper.IDEAS and \
        named.loc["alias", ["ours", "low", "high"]].tolist() == table.loc["alias", ["ours", "low", "high"]].tolist()
    words = claim_words(shown.loc["alias"])
    assert words["interval"] == shown.loc["alias", "90% interval"] and words["seeds"] == "2 vs 2" and \
        words["paper"] == "+0.0500", f"the words of a claim are its table row's: {words}"
    with pytest.raises(KeyError, match="unknown experiment"):
        verdicts("smoke", [("typo", "mrfie", "segbranch", "lIoU", 0.1)], root=tmp_path)
    pair = seed_bootstrap("smoke", {"a": "segbranch", "b": "segbranch-alias"}, [("a", "b")], root=tmp_path,
                          draws=200)
    assert pair.index.tolist() == ["a - b"] and pair.loc["a - b", "mean"] == 0 and \
        pair.loc["a - b", "seeds"] == "2 vs 2", f"every finished seed of each side, as verdicts reads them: {pair}"
    assert pair.loc["a - b", ["low", "high"]].tolist() == [row["low"], row["high"]], \
        "a pair draws what verdicts draws for the same claim"
    pair = seed_bootstrap("smoke", {"a": "segbranch", "b": "segbranch-alias"}, [("a", "b")], root=tmp_path,
                          draws=200, paired=True)
    assert pair.loc["a - b", ["mean", "low", "high"]].tolist() == [0, 0, 0], \
        f"paired, the same runs differ by exactly 0 on every draw, as verdicts(paired=True) has it: {pair}"
    with pytest.raises(FileNotFoundError, match="mrife reproduce --profile smoke"):
        seed_bootstrap("smoke", {"a": "mrife", "b": "segbranch"}, [("a", "b")], root=tmp_path)

    # Seed 0 is made a run that never learned and seed 1 one that did (by their validation
    # curves): learned_only leaves seed 0 out of both sides, and a side with no seed left says so.
    for res, curve in zip(found, ([0.0, 0.01], [0.0, 0.3])):
        first = json.loads((res.run / "history.json").read_text())[0]
        epochs = [{**first, "epoch": epoch, "val_lIoU": value} for epoch, value in enumerate(curve)]
        (res.run / "history.json").write_text(json.dumps(epochs))
    seeds = seed_table("smoke", {"seg": "segbranch", "none": "mrife"}, root=tmp_path)
    assert list(seeds.index) == [("seg", 0), ("seg", 1)], f"one row per finished seed: {seeds}"
    assert seeds["learned"].tolist() == [False, True] and seeds["best val lIoU"].tolist() == [0.01, 0.3]
    assert seeds["test lIoU"].tolist() == lious, "each seed's test lIoU"
    assert seeds["first epoch"].isna().tolist() == [True, False] and seeds["first epoch"].iloc[1] == 2, \
        "seed 1 first reaches the bar in its second epoch; seed 0 never does"
    pairing = seed_pairing("smoke", claims, root=tmp_path)
    assert pairing.loc["alias", ["seeds", "paired sd"]].tolist() == [2, 0] and math.isnan(pairing.loc["alias", "r"]), \
        f"the same runs twice: no difference seed by seed, and no correlation from 2 seeds: {pairing}"
    assert pairing.loc["alias", "independent sd"] == pytest.approx(0.29), \
        "validation bests 0.01 and 0.3 on each side: a variance of 0.29**2 / 2 each, their sum's root 0.29"
    assert pairing.loc["missing", "seeds"] == 0 and math.isnan(pairing.loc["missing", "paired sd"])
    assert pairing.loc["alias", "same CPU"] == 2, "both sides of each seed trained on this machine"
    provenance = found[0].run / "provenance.json"
    provenance.write_text(json.dumps({**json.loads(provenance.read_text()), "processor": "another CPU"}))
    assert seed_pairing("smoke", claims, root=tmp_path).loc["alias", "same CPU"] == 2, \
        "the alias reads the same run on both sides"
    robust = verdicts("smoke", claims, root=tmp_path, draws=200, learned_only=True)
    assert robust.loc["alias", "seeds"] == "1 vs 1" and robust.loc["alias", "focus mean"] == pytest.approx(lious[1]), \
        f"only seed 1 learned: {robust.loc['alias']}"
    assert verdicts("smoke", claims, root=tmp_path, draws=200, learned_only=True, paired=True).loc[
        "alias", "verdict"] == "fewer than 2 seeds in common", "one seed cannot be paired into an interval"
    for res in found[1:]:
        (res.run / "history.json").write_text(json.dumps([{**e, "val_lIoU": 0.0} for e in
                                                          json.loads((res.run / "history.json").read_text())]))
    robust = verdicts("smoke", claims, root=tmp_path, draws=200, learned_only=True)
    assert robust.loc["alias", "verdict"] == "no seed learned: segbranch, segbranch-alias", robust
    assert robust.loc["missing", "verdict"] == "not run: mrife; no seed learned: segbranch", \
        "a side not run is not one that failed"
    with pytest.raises(ValueError, match="use --seeds|seeds"):
        reproduce("smoke", tmp_path, ["segbranch"], overrides=["seed=3"], progress=False)


def test_best_and_last_reads_each_run_at_its_best_epoch_and_its_last(monkeypatch):
    def run(seed, lious):
        history = pd.DataFrame({"val_lIoU": lious, "val_recall": [0.9, 0.8, 0.7]})
        return SimpleNamespace(seed=seed, history=history)

    monkeypatch.setattr("mrife.tables.results_if_any",
                        lambda profile, experiment, root=None: [run(0, [0.1, 0.4, 0.2]), run(1, [0.1, 0.2, 0.3])]
                        if experiment == "segbranch" else [])
    table = best_and_last("cpu", {"B": "segbranch", "none": "mrife"}, metrics=("val_lIoU", "val_recall", "val_AP"))
    assert list(table.index) == [("B", 0), ("B", 1)], "a row per finished seed; an experiment without one is left out"
    assert table["best epoch"].tolist() == [2, 3] and table["epochs"].tolist() == [3, 3], "epochs counted from 1"
    assert table["val_lIoU at best"].tolist() == [0.4, 0.3] and table["val_lIoU at last"].tolist() == [0.2, 0.3]
    assert table["val_recall at best"].tolist() == [0.8, 0.7], "every metric read at the lIoU's best epoch"
    assert table["val_AP at last"].isna().all(), "a metric the runs did not record"


def test_best_val_by_profile_averages_the_same_seeds_at_each_profile(monkeypatch):
    runs = {("short", "segbranch"): [(0, [0.1, 0.3]), (1, [0.2, 0.1])], ("long", "segbranch"): [(0, [0.4, 0.5])]}
    monkeypatch.setattr("mrife.tables.results_if_any", lambda profile, experiment, root=None: [
        SimpleNamespace(seed=seed, best_val=max(curve)) for seed, curve in runs.get((profile, experiment), [])])
    table = best_val_by_profile({"short": "7 epochs", "long": "30 epochs"}, ["segbranch", "mrife"], seeds=[0, 1])
    assert table.columns.tolist() == ["7 epochs", "30 epochs"] and table.index.tolist() == ["segbranch", "mrife"]
    assert table.loc["segbranch", "7 epochs"] == pytest.approx(0.25), "the mean of each seed's best epoch"
    assert table.isna().sum().sum() == 3, "a profile that lacks one of the seeds gives NaN, not a mean of fewer"


def test_open_choices_are_decided_on_validation(tmp_path, monkeypatch, tiny_smoke):
    assert all(c in EXPERIMENTS or c in CANDIDATES
               for cs in CHOICES.values() for c in cs), "every candidate must be runnable"
    monkeypatch.setitem(CHOICES, "toy", ("segbranch", "segbranch-lr"))
    monkeypatch.setitem(CANDIDATES, "segbranch-lr", ["model.name=segbranch", "train.lr=0.05"])
    table = choice_table("smoke", "toy", root=tmp_path)
    assert table["decision"].tolist() == [Decision.NOT_RUN, Decision.NOT_RUN] and table["n"].tolist() == [0, 0]
    reproduce("smoke", tmp_path, ["segbranch", "segbranch-lr"], progress=False, seeds=[0, 1])
    table = choice_table("smoke", "toy", root=tmp_path)
    assert table["n"].tolist() == [2, 2], "both candidates over two seeds"
    assert (table["decision"] == Decision.UNDECIDED).sum() == 1 and \
        not table["decision"].isin([Decision.CHOSEN, Decision.NO_CLEAR_WINNER]).any(), "two seeds are too few to decide"
    table = choice_table("smoke", "toy", root=tmp_path, min_seeds=2)
    best_val = [max(r.history["val_lIoU"]) for r in results("smoke", "segbranch", root=tmp_path)]
    assert table.loc["segbranch", "val lIoU"] == pytest.approx(sum(best_val) / 2), "mean of the best val lIoU"
    assert "test" not in " ".join(table.columns), "a choice is judged without the test split"
    per_seed = table.loc["segbranch-lr", "per seed"]
    paired = [per_seed[s] - table.loc["segbranch", "per seed"][s] for s in (0, 1)]
    assert table.loc["segbranch-lr", "vs default"] == pytest.approx(sum(paired) / 2), "the paired difference"
    assert table.loc["segbranch", ["vs default", "vs default sd"]].tolist() == [0, 0], "the default against itself"
    top, other = table["val lIoU"].sort_values(ascending=False, kind="stable").index
    lead = table.loc[top, "val lIoU"] - table.loc[other, "val lIoU"]
    if top == "segbranch":
        assert table.loc[top, "decision"] is Decision.DEFAULT_LEADS, table
    elif lead > max(table["sd"].max(), 0.0):
        assert table.loc[top, "decision"] is Decision.CHOSEN, f"a lead beyond seed noise is a decision: {table}"
    else:
        assert table.loc["segbranch", "decision"] is Decision.NO_CLEAR_WINNER, f"within noise the default stays: {table}"


COMMITTED = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.audit
@pytest.mark.parametrize("profile, choice", [("cpu-7ep", choice) for choice in CHOICES] +
                         [("cpu", choice) for choice in CHOICES if len(candidates("cpu", choice)) > 1])
def test_the_experiments_run_what_the_committed_choice_decided(profile, choice):
    from mrife.config import config_hash

    table = choice_table(profile, choice, root=COMMITTED)
    assert table["n"].min() >= 3, f"{choice}: decided on the committed runs, each candidate over 3 seeds"
    chosen = table.index[table["decision"] == "chosen"]
    default = table.index[0]
    decided = chosen[0] if len(chosen) else default
    run = {e: config_hash(experiment_config(profile, e)) for e in EXPERIMENTS}.values()
    assert config_hash(experiment_config(profile, decided)) in run, \
        f"{choice}: the decision on the committed runs is {decided!r}, which no experiment runs: {table}"
    if decided != default:
        assert config_hash(experiment_config(profile, default)) not in run, \
            f"{choice}: the default {default!r} was not kept, yet an experiment still runs it"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=COMMITTED.parent, capture_output=True, text=True)


def committed_provenances() -> list[Path]:
    """The runs behind the tables, the open choices (``results/cpu``, ``results/cpu-7ep``)
    and the epoch counts (``results/sizing``, ``results/cpu-sizing``)."""
    provenances = sorted(p for folder in ("cpu", "sizing", "cpu-sizing", "cpu-7ep")
                         for p in (COMMITTED / folder).glob("*/provenance.json"))
    assert len(provenances) >= 46 + 76 + 2 + 6, f"the committed runs are missing under {COMMITTED}"
    return provenances


@pytest.mark.audit
def test_every_committed_run_of_the_book_ran_from_a_clean_tree():
    provenances = committed_provenances()
    changed = {p.parent.name: changed_tree(p.parent) for p in provenances if changed_tree(p.parent)}
    assert not changed, f"runs trained from code no commit holds (train them again with --force): {changed}"


@pytest.mark.audit
def test_every_committed_run_of_the_book_ran_a_commit_of_this_repository():
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("a shallow clone or an unpacked archive: the commits' history is not here to check")
    commits = {json.loads(p.read_text())["git_commit"] for p in committed_provenances()}
    unknown = [c for c in sorted(commits) if _git("merge-base", "--is-ancestor", c, "HEAD").returncode != 0]
    assert not unknown, f"runs name commits that are not in this repository's history: {unknown}"


@pytest.mark.audit
def test_the_plateau_profile_trains_the_epochs_its_sizing_runs_read():
    """Chapter 5's reading: the epoch count where every sizing model's curve levels off, by
    the rule written before the runs, within the reproduction's budget."""
    sizing = {name: [res.history for res in results("cpu-sizing", name, root=COMMITTED)]
              for name in PROFILE_EXPERIMENTS["cpu-sizing"]}
    assert all(len(h) == len(SEEDS["cpu-sizing"]) for h in sizing.values()), "every sizing run is committed"
    read = plateau_epoch(sizing).attrs["epochs"]
    epochs, hours, _ = epochs_within("cpu", epoch_seconds(COMMITTED / "cpu-7ep"), read, REPRODUCTION_HOURS)
    assert load_profile("cpu").train.epochs == epochs, f"the rule read {read}, the budget allows {epochs}"
    assert round(hours) <= REPRODUCTION_HOURS, f"{hours:.1f} h: about the budget, to the hour"


def test_the_leader_is_judged_against_the_default(monkeypatch):
    import mrife.results as results_module

    scores = {}

    def fake_results(profile, name, root=None):
        if not scores.get(name):
            raise FileNotFoundError(name)
        return [SimpleNamespace(seed=s, best_val=v) for s, v in scores[name].items()]

    monkeypatch.setattr(results_module, "results", fake_results)
    monkeypatch.setitem(CHOICES, "toy", ("segbranch", "a", "b"))
    monkeypatch.setitem(CANDIDATES, "a", ["model.name=segbranch", "train.lr=0.05"])
    monkeypatch.setitem(CANDIDATES, "b", ["model.name=segbranch", "train.lr=0.1"])
    scores.update(segbranch={0: 0.10, 1: 0.12, 2: 0.11}, a={0: 0.40, 1: 0.41, 2: 0.42}, b={0: 0.39, 1: 0.41, 2: 0.40})
    table = choice_table("smoke", "toy")
    assert table["decision"].tolist() == [Decision.NONE, Decision.CHOSEN, Decision.NONE], \
        f"two candidates far ahead of the default, within noise of each other: the leader is chosen\n{table}"
    scores["b"] = {0: 0.5, 1: 0.6}
    table = choice_table("smoke", "toy")
    assert table.loc["b", "decision"] is Decision.UNDECIDED, "every candidate needs 3 seeds"
    scores.update(a={0: 0.10, 1: 0.13, 2: 0.12}, b={0: 0.05, 1: 0.15, 2: 0.1})
    table = choice_table("smoke", "toy")
    assert table.loc["a", "decision"] is Decision.WITHIN_NOISE and \
        table.loc["segbranch", "decision"] is Decision.NO_CLEAR_WINNER
    scores.update(segbranch={0: 0.5, 1: 0.5, 2: 0.5})
    assert choice_table("smoke", "toy").loc["segbranch", "decision"] is Decision.DEFAULT_LEADS
    monkeypatch.setitem(PROFILE_EXPERIMENTS, "smoke", ("segbranch", "a"))
    scores.update(segbranch={0: 0.10, 1: 0.12, 2: 0.11}, a={0: 0.40, 1: 0.41, 2: 0.42}, b={0: 0.5})
    table = choice_table("smoke", "toy")
    assert table.index.tolist() == ["segbranch", "a"] and table.loc["a", "decision"] is Decision.CHOSEN, \
        f"a profile with its own experiments judges the candidates it trains, not those it does not\n{table}"


def test_a_read_only_profile_trains_nothing(tmp_path):
    from mrife.experiments import READ_ONLY_PROFILES

    assert "cpu-7ep" in READ_ONLY_PROFILES
    with pytest.raises(ValueError, match="cpu-7ep.* read-only.*results/cpu-7ep/"):
        reproduce("cpu-7ep", root=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing was written"


def test_the_plateau_profile_decides_the_fusion_choice_again_and_keeps_the_others():
    assert candidates("cpu", "fusion") == ("mrife", "fusion-student-bn")
    assert candidates("cpu-7ep", "fusion") == CHOICES["fusion"]
    assert all(candidates("cpu", choice) == CHOICES[choice][:1] for choice in CHOICES if choice != "fusion")
    with pytest.raises(KeyError, match="unknown choice"):
        candidates("cpu", "no-such-choice")


def test_a_choice_is_read_where_it_was_decided():
    assert decided_at("cpu", "fusion") == "cpu", "judged again at the plateau"
    assert {decided_at("cpu", choice) for choice in CHOICES if choice != "fusion"} == {"cpu-7ep"}
    assert all(decided_at(profile, choice) == profile
               for profile in ("smoke", "cpu-7ep", "paper") for choice in CHOICES), "every candidate is judged there"


def test_two_reproductions_sharing_a_folder_keep_each_others_index(tmp_path, monkeypatch):
    import mrife.reproduce as reproduce_module

    def fit_beside_another(cfg, root, progress=True, force=False):
        # While this run trains, another `mrife reproduce` records a run of its own.
        (root / "index.json").write_text(json.dumps({"mrife": {"0": "mrife-from-elsewhere"}}))
        return tmp_path / "run"

    monkeypatch.setattr(reproduce_module, "fit", fit_beside_another)
    reproduce("smoke", tmp_path, ["segbranch"], progress=False)
    index = json.loads((tmp_path / "smoke" / "index.json").read_text())
    assert index["mrife"] == {"0": "mrife-from-elsewhere"}, "the other process's entry was overwritten"
    assert set(index["segbranch"]) == {"0"}


def test_sizing_runs_are_read_by_model_and_length(tmp_path, tiny):
    run = fit(load_profile("smoke", ["model.name=segbranch", *tiny, "train.epochs=2"]), tmp_path / "sizing",
              progress=False)
    (tmp_path / "sizing" / "unfinished").mkdir()
    found = sizing_runs(tmp_path)
    assert list(found) == ["segbranch, 2 epochs"], f"one finished sizing run expected, got {list(found)}"
    assert found["segbranch, 2 epochs"].run == run and len(found["segbranch, 2 epochs"].history) == 2


def test_check_retrains_a_run_and_places_it_within_the_committed_seeds(tmp_path, capsys, tiny_smoke):
    with pytest.raises(FileNotFoundError, match="no finished run of 'segbranch'"):
        check("smoke", "segbranch", root=tmp_path, progress=False)  # nothing committed: nothing trained
    assert not (tmp_path / "check").exists()
    committed = reproduce("smoke", tmp_path, ["segbranch"], progress=False, seeds=[0, 1])["segbranch"]

    table = check("smoke", "segbranch", seed=0, root=tmp_path, progress=False)
    assert list(table.index) == ["val lIoU", *METRIC_NAMES]
    assert (table["retrained"] == table["committed"]).all(), "on the CPU a seed trained again is the same run"
    assert (table["within"] == "yes").all() and (table["n"] == 2).all()
    assert (tmp_path / "check" / "smoke" / committed[0].name / "test_metrics.json").exists(), \
        "the check trains into <root>/check/, beside the committed runs"

    # Committed seeds far from what this code trains: the check must say so, metric by metric.
    for seed, value in ((0, 0.97), (1, 0.98)):
        path = committed[seed] / "test_metrics.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"lIoU": value}))
    capsys.readouterr()
    assert main(["reproduce", "--profile", "smoke", "--out", str(tmp_path), "--check", "segbranch",
                 "--no-progress"]) == 1, "a metric outside the spread must fail the command"
    out = capsys.readouterr().out
    assert "within: inside mean +- 2 sd" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("lIoU"))
    assert row[-1] == "no" and float(row[3]) == pytest.approx(0.975), f"lIoU row: {row}"
    assert main(["reproduce", "--profile", "smoke", "--check", "segbranch", "--force"]) == 2, \
        "--check with --force must be refused"


def test_force_trains_a_finished_run_again(tmp_path, capsys, tiny_smoke):
    run = reproduce("smoke", tmp_path, ["segbranch"], progress=False)["segbranch"][0]
    first = (run / "test_metrics.json").read_text()
    (run / "marker").write_text("left by the first training")
    capsys.readouterr()
    reproduce("smoke", tmp_path, ["segbranch"], progress=False)
    assert "finished, skipped" in capsys.readouterr().out and (run / "marker").exists(), "without force: skipped"
    prov = json.loads((run / "provenance.json").read_text())
    (run / "provenance.json").write_text(json.dumps({**prov, "git_commit": "aaaa1111bbbb", "git_dirty": True}))
    reproduce("smoke", tmp_path, ["segbranch"], progress=False)
    assert "finished, skipped; trained from a changed tree at commit aaaa1111bb: --force trains it again" in \
        capsys.readouterr().out, "a skipped run from a changed tree is named, with how to train it again"
    reproduce("smoke", tmp_path, ["segbranch"], progress=False, force=True)
    assert "training" in capsys.readouterr().out
    assert not (run / "marker").exists(), "force must empty the run directory and train it from the start"
    assert (run / "test_metrics.json").read_text() == first, "trained again from the start: the same run on the CPU"
