"""The tables that compare finished runs: with the paper, with each other over seeds and
test scenes, and the candidates of a choice the paper leaves open.

:func:`compare` (mean over seeds beside the paper), :func:`seed_bootstrap` and
:func:`verdicts` (intervals over seeds and test scenes; paired by seed too, and
:func:`seed_pairing` reads on validation whether seeds go together), :func:`seed_table`
(the seeds run by run), :func:`best_and_last` (each run's validation metrics at its best
epoch and its last) and :func:`choice_table` (an open choice's candidates on the
validation split, and the rule that decides it). They read the runs through
:mod:`mrife.results`; :mod:`mrife.report` and :mod:`mrife.training_report` say in
words what they show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrife.experiments import EXPERIMENTS, candidates, overrides_of
from mrife.claims import NOT_LEARNING, Decision, decide, verdict
from mrife.metrics import METRIC_NAMES, hierarchical_bootstrap
from mrife.paper import Claim
from mrife.results import results, results_if_any, seed_scene_confusions


def compare(profile: str, rows: dict[str, str], paper_table: dict[str, dict[str, float]],
            metrics=None, root=None) -> pd.DataFrame:
    """The paper's numbers beside ours, over every finished training seed.

    Args:
        rows: table row label -> experiment name (``None`` for a row we do not run).
        paper_table: row label -> metric -> the paper's value (from :mod:`mrife.paper`).
        metrics: columns to show (default: those of the paper's table).

    Returns:
        A DataFrame indexed by row label with columns ``(metric, source)``, source one of
        ``"paper"`` (the paper's value, NaN when it has none), ``"ours"`` (the mean over our
        finished seeds of each seed's test metric), ``"sd"`` (their standard deviation,
        ddof 1; NaN with fewer than two seeds) and ``"n"`` (how many seeds): floats, and
        ints for n. A run that does not exist yet has NaN as ours and 0 as n
        (:func:`mrife.report.format_table` shows it as "not run").

    Raises:
        KeyError: a row names an experiment that does not exist (the message lists them).
    """
    unknown = sorted(e for e in rows.values() if e is not None and e not in EXPERIMENTS)
    if unknown:
        raise KeyError(f"unknown experiments {unknown} in the rows; valid: {', '.join(EXPERIMENTS)}")
    metrics = metrics or list(next(iter(paper_table.values())))
    table = {}
    for label, experiment in rows.items():
        tests = [res.test for res in results_if_any(profile, experiment, root)] if experiment else []
        paper_row = paper_table.get(label, {})
        cells = {}
        for m in metrics:
            values = [float(t[m]) for t in tests if m in t]
            cells[(m, "paper")] = float(paper_row.get(m, np.nan))
            cells[(m, "ours")] = float(np.mean(values)) if values else np.nan
            cells[(m, "sd")] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
            cells[(m, "n")] = len(values)
        table[label] = cells
    df = pd.DataFrame.from_dict(table, orient="index")
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "source"])
    return df


def seed_bootstrap(profile: str, rows: dict[str, str], pairs, metric: str = "lIoU", root=None,
                   draws: int = 2000, level: float = 0.9, seed: int = 0, paired: bool = False) -> pd.DataFrame:
    """The difference of ``metric`` for each pair of rows, with an interval over every
    finished seed and the test scenes (:func:`mrife.metrics.hierarchical_bootstrap`).

    Args:
        rows: label -> experiment name.
        pairs: ``(a, b)`` tuples of labels of ``rows``. Each pair is bootstrapped on its two
            models alone, ``a`` first, so that its draws are those of :func:`verdicts` for
            the same two experiments.
        paired: compare each pair seed by seed, on the seeds both have (as
            ``verdicts(..., paired=True)`` does); differences that share a model then add up:
            (a - b) + (b - c) = a - c when the three have the same seeds.

    Returns:
        One row ``"a - b"`` per pair, with hierarchical_bootstrap's columns (``mean``: the
        difference of the means over seeds; ``low``, ``high``: the ``level`` interval;
        ``seeds``, ``share > 0``).

    Raises:
        FileNotFoundError: a row's experiment has no finished seed (the message says how
            to produce it).
    """
    confusions = seed_scene_confusions({label: results(profile, e, root) for label, e in rows.items()})
    out = []
    for a, b in pairs:
        pair = {a: confusions[a], b: confusions[b]}
        if paired:
            common = set(confusions[a]) & set(confusions[b])
            pair = {label: {k: v for k, v in per_seed.items() if k in common} for label, per_seed in pair.items()}
        out.append(hierarchical_bootstrap(pair, metric, focus=a, draws=draws, level=level, seed=seed,
                                          paired_seeds=paired).loc[[f"{a} - {b}"]])
    return pd.concat(out)


def verdicts(profile: str, claims, root=None, draws: int = 2000, level: float = 0.9, seed: int = 0,
             learned_only: bool = False, paired: bool = False) -> pd.DataFrame:
    """A verdict on each difference the paper claims, with an interval over seeds and test scenes.

    Args:
        claims: :class:`mrife.paper.Claim` s, or tuples of their fields: ``(label, focus
            experiment, other experiment, metric, the paper's difference focus - other[,
            what the claim isolates])``, e.g. ``("MRIFE over the baseline", "mrife",
            "deeplabv3plus", "lIoU", 0.3934 - 0.3381)``; a difference of +inf claims only that
            focus is ahead (:data:`mrife.paper.DIRECTION_CLAIMS`).
        draws, level, seed: of :func:`mrife.metrics.hierarchical_bootstrap`.
        learned_only: leave out the seeds that never learned (:attr:`mrife.results.Result.learned`), to
            see whether a verdict rests on them.
        paired: compare the two sides seed by seed, on the seeds both have, resampling
            those seeds together (``paired_seeds`` of the bootstrap; :func:`seed_pairing`
            reads on the validation split whether the sides' seeds go together).

    Every finished seed of each experiment (:func:`mrife.results.results`) is re-tested scene by scene
    (:func:`mrife.results.seed_scene_confusions`, once per experiment), and the difference
    focus - other bootstrapped by resampling both the seeds of each model and the test
    scenes (paired over scenes).

    Returns:
        A DataFrame indexed by claim label with columns ``focus``, ``other``, ``isolates``
        (what the two sides differ in; "" when the claim does not say), ``metric``,
        ``paper`` (its difference), ``ours`` (mean over seeds of focus minus mean over seeds
        of other: the difference of the ``"ours"`` cells of :func:`compare`; with ``paired``,
        the means are over the seeds both have), ``low`` and
        ``high`` (the ``level`` interval), ``share > 0`` (draws where focus is ahead),
        ``seeds`` ("focus vs other"; "N paired" with ``paired``), ``verdict``
        (:func:`mrife.claims.verdict`; "not run: <experiments>" when an experiment has no
        finished seed, "no seed learned: <experiments>" when ``learned_only`` leaves it
        none, both joined by "; ", and "fewer than 2 seeds in common" when ``paired``
        leaves fewer) and
        ``focus mean``, ``focus sd``, ``other mean``, ``other sd`` (each side's metric over
        its seeds; sd NaN for one seed). The level is in ``.attrs["level"]``.

    Raises:
        KeyError: an unknown experiment or metric (before anything is computed).
        ValueError: a claim compares an experiment with itself.
    """
    claims = [Claim(*c) for c in claims]
    for label, focus, other, metric, *_ in claims:
        for experiment in (focus, other):
            if experiment not in EXPERIMENTS:
                raise KeyError(f"unknown experiment {experiment!r} in claim {label!r}; valid: {', '.join(EXPERIMENTS)}")
        if metric not in METRIC_NAMES:
            raise KeyError(f"unknown metric {metric!r} in claim {label!r}; valid: {METRIC_NAMES}")
        if focus == other:
            raise ValueError(f"claim {label!r} compares {focus!r} with itself")
    found, failed = {}, set()
    for experiment in dict.fromkeys(e for c in claims for e in (c.focus, c.other)):
        runs = results_if_any(profile, experiment, root)
        if not runs:
            continue
        found[experiment] = runs
        if learned_only:
            found[experiment] = [res for res in found[experiment] if res.learned]
            if not found[experiment]:
                failed.add(experiment)
                del found[experiment]
    confusions = seed_scene_confusions(found)
    rows = {}
    for label, focus, other, metric, paper_diff, isolates in claims:
        row = {"focus": focus, "other": other, "isolates": isolates, "metric": metric, "paper": paper_diff}
        pair = {e: confusions[e] for e in (focus, other) if e in confusions}
        if paired and len(pair) == 2:
            common = sorted(set(pair[focus]) & set(pair[other]))
            pair = {e: {k: per_seed[k] for k in common} for e, per_seed in pair.items()} if len(common) > 1 else {}
        if len(pair) == 2:
            boot = hierarchical_bootstrap(pair, metric, focus=focus, draws=draws, level=level, seed=seed,
                                          paired_seeds=paired)
            diff = boot.loc[f"{focus} - {other}"]
            row |= {"ours": diff["mean"], "low": diff["low"], "high": diff["high"], "share > 0": diff["share > 0"],
                    "seeds": f"{boot.loc[focus, 'seeds']} paired" if paired else diff["seeds"],
                    "verdict": verdict(diff["low"], diff["high"], paper_diff),
                    "focus mean": boot.loc[focus, "mean"], "focus sd": boot.loc[focus, "sd"],
                    "other mean": boot.loc[other, "mean"], "other sd": boot.loc[other, "sd"]}
        else:
            missing = [e for e in (focus, other) if e not in confusions]
            why = [f"{words}: {', '.join(names)}" for words, names in (
                ("not run", [e for e in missing if e not in failed]),
                ("no seed learned", [e for e in missing if e in failed])) if names] or ["fewer than 2 seeds in common"]
            row |= {"ours": np.nan, "low": np.nan, "high": np.nan, "share > 0": np.nan,
                    "seeds": " vs ".join(str(len(found.get(e, []))) for e in (focus, other)),
                    "verdict": "; ".join(why), "focus mean": np.nan, "focus sd": np.nan,
                    "other mean": np.nan, "other sd": np.nan}
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["level"] = level
    return table


def seed_pairing(profile: str, claims, root=None) -> pd.DataFrame:
    """Whether the two sides of each claim go up and down together from seed to seed, read
    on the validation split: the evidence for comparing them paired by seed
    (``verdicts(..., paired=True)``). The test split is not read.

    Args:
        claims: as for :func:`verdicts` (only their experiments are used).

    Returns:
        A DataFrame indexed by claim label with columns ``focus``, ``other``, ``seeds``
        (how many both have), ``same CPU`` (how many of those seeds trained both sides on
        one kind of processor, :attr:`mrife.results.Result.cpu`: only there is a seed the
        same draw of training noise for the two), ``r`` (Pearson's correlation over those seeds of the two
        sides' best validation lIoU; NaN below 3 seeds or where a side does not vary),
        ``paired sd`` (the standard deviation over seeds of focus minus other, seed by
        seed) and ``independent sd`` (what it would be if the seeds had nothing in
        common: the root of the sum of the two sides' variances); both sds ddof 1. A
        claim with a side not run has 0 seeds and NaN elsewhere.
    """
    best, cpu = {}, {}  # experiment -> seed -> best validation lIoU / its processor, each experiment read once
    for experiment in dict.fromkeys(e for _, f, o, *_ in claims for e in (f, o)):
        found = results_if_any(profile, experiment, root)
        best[experiment] = {res.seed: res.best_val for res in found}
        cpu[experiment] = {res.seed: res.cpu for res in found}
    rows = {}
    for label, focus, other, *_ in claims:
        common = sorted(set(best[focus]) & set(best[other]))
        a, b = (np.array([best[e][k] for k in common]) for e in (focus, other))
        varies = len(common) > 2 and a.std() > 0 and b.std() > 0
        rows[label] = {"focus": focus, "other": other, "seeds": len(common),
                       "same CPU": sum(bool(cpu[focus][k]) and cpu[focus][k] == cpu[other][k] for k in common),
                       "r": float(np.corrcoef(a, b)[0, 1]) if varies else np.nan,
                       "paired sd": float(np.std(a - b, ddof=1)) if len(common) > 1 else np.nan,
                       "independent sd": float(np.sqrt(a.var(ddof=1) + b.var(ddof=1))) if len(common) > 1 else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def seed_table(profile: str, rows: dict[str, str], root=None) -> pd.DataFrame:
    """Every finished seed of each row's experiment, run by run.

    Args:
        rows: label -> experiment name; an experiment with no finished seed is left out.

    Returns:
        A DataFrame indexed by ``(label, seed)`` with columns ``best val lIoU``, ``test
        lIoU`` (of the best-validation checkpoint), ``learned`` (:attr:`mrife.results.Result.learned`)
        and ``first epoch`` (the first epoch, from 1, whose validation lIoU reaches
        :data:`mrife.claims.NOT_LEARNING`; missing for a run that never learned).
    """
    table = {}
    for label, experiment in rows.items():
        for res in results_if_any(profile, experiment, root):
            reached = np.flatnonzero(res.history["val_lIoU"].to_numpy() >= NOT_LEARNING)
            table[(label, res.seed)] = {"best val lIoU": res.best_val,
                                        "test lIoU": float(res.test["lIoU"]), "learned": res.learned,
                                        "first epoch": int(reached[0]) + 1 if len(reached) else pd.NA}
    columns = ["best val lIoU", "test lIoU", "learned", "first epoch"]
    index = pd.MultiIndex.from_tuples(list(table), names=["model", "seed"])
    return pd.DataFrame(list(table.values()), index=index, columns=columns).astype({"first epoch": "Int64"})


def best_val_by_profile(profiles: dict[str, str], experiments, seeds, root=None) -> pd.DataFrame:
    """Each experiment's best validation lIoU (the epoch whose checkpoint is kept), the mean
    over ``seeds``, at each profile: one schedule of the same seeds beside another.

    Args:
        profiles: profile -> column label, e.g. ``{"cpu-7ep": "7 epochs", "cpu": "27 epochs"}``.
        experiments: the experiment names, the rows.
        seeds: the seeds averaged over; where a profile lacks one of them, the mean is NaN.

    Returns:
        A DataFrame indexed by experiment, one column per label, fractions in [0, 1] or NaN.
    """
    def mean_best(profile: str, experiment: str) -> float:
        best = pd.Series({res.seed: res.best_val for res in results_if_any(profile, experiment, root)}, dtype=float)
        return best.reindex(list(seeds)).mean(skipna=False)

    return pd.DataFrame({label: {name: mean_best(profile, name) for name in experiments}
                         for profile, label in profiles.items()})


LATE_METRICS = ("val_lIoU", "val_AP", "val_precision", "val_recall")  # what best_and_last reads by default


def best_and_last(profile: str, rows: dict[str, str], metrics=LATE_METRICS, root=None) -> pd.DataFrame:
    """Each run's validation metrics at its best epoch (the checkpoint kept) and at its last.

    A run whose validation lIoU ends well below its best lost something late in training;
    its average precision (threshold-free) and its precision and recall at the two epochs
    say what (:func:`mrife.training_report.read_late` says it in words).

    Args:
        rows: label -> experiment name; an experiment with no finished seed is left out.
        metrics: history columns, the first the one whose maximum is the best epoch; a
            column a run did not record (``val_AP`` before it was) is NaN.

    Returns:
        A DataFrame indexed by ``(model, seed)`` with columns ``best epoch`` and ``epochs``
        (counted from 1) and, for each metric, ``<metric> at best`` and ``<metric> at last``
        (the history's values: fractions in [0, 1] for the validation metrics).
    """
    table = {}
    for label, experiment in rows.items():
        for res in results_if_any(profile, experiment, root):
            history = res.history.reindex(columns=list(metrics))
            best = int(history[metrics[0]].to_numpy().argmax())
            row = {"best epoch": best + 1, "epochs": len(history)}
            for metric in metrics:
                row[f"{metric} at best"] = float(history[metric].iloc[best])
                row[f"{metric} at last"] = float(history[metric].iloc[-1])
            table[(label, res.seed)] = row
    columns = ["best epoch", "epochs", *(f"{m} at {when}" for m in metrics for when in ("best", "last"))]
    index = pd.MultiIndex.from_tuples(list(table), names=["model", "seed"])
    return pd.DataFrame(list(table.values()), index=index, columns=columns)


def branch_table(profile: str, rows: dict[str, str], metric: str = "lIoU", ablation: str = "enhancement_off",
                 root=None) -> pd.DataFrame:
    """What a part of the model adds at test, seed by seed: each finished run scored whole
    and with the part switched off (``<ablation>_<metric>`` of its test metrics, written
    by the model's ``test_ablations``; MRIFE's is its enhancement branch).

    Args:
        rows: label -> experiment name; an experiment with no finished seed is left out.

    Returns:
        A DataFrame indexed by ``(label, seed)`` with columns ``whole``, ``without`` (the
        metric of the best-validation checkpoint with the part switched off; NaN for a run
        trained before the ablation was recorded), ``adds`` (whole minus without) and
        ``CPU`` (:attr:`mrife.results.Result.cpu`).
    """
    table = {}
    for label, experiment in rows.items():
        for res in results_if_any(profile, experiment, root):
            whole, without = float(res.test[metric]), float(res.test.get(f"{ablation}_{metric}", np.nan))
            table[(label, res.seed)] = {"whole": whole, "without": without, "adds": whole - without, "CPU": res.cpu}
    index = pd.MultiIndex.from_tuples(list(table), names=["model", "seed"])
    return pd.DataFrame(list(table.values()), index=index, columns=["whole", "without", "adds", "CPU"])


def choice_table(profile: str, choice: str, root=None, min_seeds: int = 3) -> pd.DataFrame:
    """The candidates of an open choice that ``profile`` judges
    (:func:`mrife.experiments.candidates`) on the validation split.

    Each candidate's score is the best validation lIoU of its run (the epoch whose
    checkpoint is kept), averaged over its finished seeds. The decision rule: the
    candidate with the highest mean is chosen when it leads the default (the candidate
    listed first) by more than the larger of their two standard deviations over seeds;
    otherwise the default stays (:func:`mrife.claims.decide`, which says how). Nothing is
    decided before every candidate has ``min_seeds`` seeds. The test split is never read.

    Until 2026-12-01 the leader was measured against the runner-up, not the default:
    two candidates that both beat the default by far, within noise of each other, would
    have kept the default. The choices decided before (fusion, precision) come out the
    same under both rules.

    Returns:
        A DataFrame indexed by candidate with columns ``overrides``, ``val lIoU``
        (mean), ``sd``, ``n`` (seeds), ``decision`` (a :class:`mrife.claims.Decision`), ``vs default`` and ``vs default sd``
        (the candidate minus the default, seed by seed over the seeds both have: mean and
        sd; a paired view that shows more than the rule uses, not part of the decision)
        and ``per seed`` (seed -> best validation lIoU, for
        :func:`mrife.plots.choice_seeds`); a candidate with no finished run has n 0 and
        ``Decision.NOT_RUN``.
    """
    names = candidates(profile, choice)
    rows = {}
    for name in names:
        per_seed = {res.seed: res.best_val for res in results_if_any(profile, name, root)}
        best = list(per_seed.values())
        rows[name] = {"overrides": " ".join(o for o in overrides_of(name) if not o.startswith("model.name=")) or
                      "(default)", "val lIoU": float(np.mean(best)) if best else np.nan,
                      "sd": float(np.std(best, ddof=1)) if len(best) > 1 else np.nan, "n": len(best),
                      "per seed": per_seed}
    table = pd.DataFrame.from_dict(rows, orient="index")
    decisions = decide({name: row["per seed"] for name, row in rows.items()}, min_seeds)
    table.insert(4, "decision", [decisions[name] for name in table.index])
    default = names[0]
    default_seeds = rows[default]["per seed"]
    paired = [[value - default_seeds[s] for s, value in row["per seed"].items() if s in default_seeds]
              for row in rows.values()]
    table.insert(5, "vs default", [float(np.mean(d)) if d else np.nan for d in paired])
    table.insert(6, "vs default sd", [float(np.std(d, ddof=1)) if len(d) > 1 else np.nan for d in paired])
    return table
