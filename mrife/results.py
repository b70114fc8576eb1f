"""Finished runs, read back from their run directories as the chapters read them.

:func:`result` (one seed), :func:`finished` (one seed of several experiments),
:func:`results` (every finished seed), :func:`drawn` (a run's figure data),
:func:`sizing_runs`, :func:`run_times` (what each run took on what),
:func:`reproduction_time` (a profile's machine time by processor), :func:`epoch_times`
(its epoch times by model and processor) and the test counts scene by scene
(:func:`scene_confusions`, :func:`seed_scene_confusions`). The error for a missing run
names the ``mrife reproduce`` command that trains it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mrife import figure_data
from mrife.config import RunConfig, load_yaml
from mrife.claims import NOT_LEARNING
from mrife.experiments import CHOICES, candidates, experiment_config, profile_experiments, results_root, seeds_for
from mrife.metrics import ConfusionMatrix
from mrife.runs import changed_tree, is_finished, run_dir_for


@dataclass
class Result:
    """One finished run (one experiment at one seed), as the chapters read it."""

    experiment: str
    run: Path
    config: RunConfig
    history: pd.DataFrame  # one row per epoch: train_* loss terms, val_* metrics, seconds
    test: dict[str, float]  # test metrics of the best-validation checkpoint

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def best_val(self) -> float:
        """The best validation lIoU of the run, in [0, 1]: the epoch whose checkpoint is kept."""
        return float(self.history["val_lIoU"].max())

    @property
    def learned(self) -> bool:
        """Whether the run learned to find landslides at all: its best validation lIoU
        reaches :data:`mrife.claims.NOT_LEARNING` (a rule on the validation split, so
        leaving out the runs that fail it never looks at the test split)."""
        return self.best_val >= NOT_LEARNING

    @property
    def cpu(self) -> str:
        """The processor that trained the run, from its ``provenance.json``: its name and,
        where recorded, the kind that rounds alike (:func:`mrife.compute.cpu_kind`); "" when
        not recorded or trained on a GPU. Training differs between CPU kinds in the 4th digit
        and beyond, so two runs of one seed draw the same training noise only on one kind."""
        prov = json.loads((self.run / "provenance.json").read_text())
        return _processor(prov) if prov.get("device", "cpu") == "cpu" else ""


def _processor(prov: dict) -> str:
    """The CPU a run's provenance names, and the kind that rounds alike; "" when not recorded."""
    return " ".join(p for p in (prov.get("processor"), prov.get("cpu_kind")) if p)


def _how_to_produce(profile: str, experiment: str, seed: int | None = None) -> str:
    """The command that trains the missing run(s)."""
    extra = "" if seed is None or seed in seeds_for(profile, experiment) else f" --seeds {seed}"
    return (f"`mrife reproduce --profile {profile}{extra}` "
            f"(or `mrife reproduce --profile {profile} --only {experiment}{extra}`)")


def result(profile: str, experiment: str, root: str | Path | None = None, seed: int | None = None) -> Result:
    """The run of ``experiment`` at ``profile`` and ``seed`` (default: the profile's first
    seed); a clear error saying how to produce it."""
    seed = seeds_for(profile, experiment)[0] if seed is None else seed
    cfg = experiment_config(profile, experiment, seed=seed)
    run = run_dir_for(cfg, Path(root or results_root()) / profile)
    if not is_finished(run):
        raise FileNotFoundError(
            f"no finished run of {experiment!r} at profile {profile!r}, seed {seed}, in {run}; produce it with "
            + _how_to_produce(profile, experiment, seed)
        )
    return read_result(experiment, run)


def read_result(experiment: str, run: Path) -> Result:
    """A finished run directory as a :class:`Result`."""
    history = pd.DataFrame(json.loads((run / "history.json").read_text()))
    test = json.loads((run / "test_metrics.json").read_text())
    return Result(experiment, run, load_yaml(run / "config.yaml"), history, test)


def finished(profile: str, experiments, root: str | Path | None = None) -> dict[str, Result]:
    """The first seed's run of each experiment that is finished, for a chapter's figures.

    ``experiments`` is a list of experiment names or a dict label -> experiment; the
    result is keyed the same way and leaves out what is missing, after printing one line
    for each missing run with the command that produces it.
    """
    named = experiments if isinstance(experiments, dict) else {e: e for e in experiments}
    found = {}
    for label, experiment in named.items():
        try:
            found[label] = result(profile, experiment, root)
        except FileNotFoundError as err:
            print(f"{label}: {err}")
    return found


def drawn(profile: str, experiments, root: str | Path | None = None) -> dict[str, figure_data.FigureData]:
    """The figure data of each experiment, from its lowest finished seed that has it.

    Runs trained before figure data existed, whose checkpoints are gone, have none, so
    the seed drawn can differ between experiments; one printed line says which seed each
    comes from, another why an experiment is left out. ``experiments`` is a list of
    names or a dict label -> experiment; the result is keyed the same way.
    """
    named = experiments if isinstance(experiments, dict) else {e: e for e in experiments}
    found, seeds = {}, {}
    for label, experiment in named.items():
        try:
            runs = results(profile, experiment, root)
        except FileNotFoundError as err:
            print(f"{label}: {err}")
            continue
        with_data = [res for res in runs if (res.run / figure_data.FILE).exists()]
        if not with_data:
            print(f"{label}: none of its finished seeds ({', '.join(str(res.seed) for res in runs)}) has "
                  f"{figure_data.FILE}; `mrife reproduce --profile {profile} --only {experiment} --seeds N --force` "
                  "trains seed N again with it (and its numbers with it)")
            continue
        found[label], seeds[label] = figure_data.read(with_data[0].run), with_data[0].seed
    if seeds:
        print("figure data from:", ", ".join(f"{label} seed {seed}" for label, seed in seeds.items()))
    return found


def sizing_runs(root: str | Path | None = None) -> dict[str, Result]:
    """The finished runs under ``<root>/sizing/``: single seeds of the ``cpu`` profile trained
    for more epochs than it does, to see where validation levels off (chapter 5). Keyed
    "<model>, <epochs> epochs"; each Result's ``experiment`` is its model's name."""
    found = {}
    for run in sorted((Path(root or results_root()) / "sizing").glob("*/")):
        if is_finished(run):
            cfg = load_yaml(run / "config.yaml")
            found[f"{cfg.model.name}, {cfg.train.epochs} epochs"] = read_result(cfg.model.name, run)
    return found


def run_times(runs: dict[str, Result]) -> pd.DataFrame:
    """How long each run took and on what, from its ``provenance.json``: indexed by label,
    columns ``run``, ``epochs``, ``wall time (s)`` (every try), ``epochs' sum (s)`` (the
    history's epoch times), ``device``, ``threads``, ``torch``, ``commit`` (10 digits) and
    ``clean tree`` ("yes", or "no" when a try ran on changed files: :func:`mrife.runs.changed_tree`)."""
    rows = {}
    for label, res in runs.items():
        prov = json.loads((res.run / "provenance.json").read_text())
        rows[label] = {"run": res.run.name, "epochs": len(res.history), "wall time (s)": prov["wall_time_s"],
                       "epochs' sum (s)": round(res.history["seconds"].sum(), 1), "device": prov["device"],
                       "threads": prov["threads"], "torch": prov["packages"]["torch"],
                       "commit": prov["git_commit"][:10], "clean tree": "no" if changed_tree(res.run) else "yes"}
    return pd.DataFrame(rows).T


def reproduction_time(profile: str, root: str | Path | None = None) -> pd.DataFrame:
    """The machine time of a profile's reproduction so far, by the processor that trained it.

    Every finished seed of every run ``mrife reproduce`` trains for ``profile``: its
    experiments (:func:`mrife.experiments.profile_experiments`) and the candidates of the
    open choices it judges (:func:`mrife.experiments.candidates`).

    Returns:
        A DataFrame indexed by processor (:attr:`Result.cpu`; the device for a run trained
        on a GPU; "not recorded" for the first runs, whose provenance did not name it),
        with columns ``runs`` and ``hours`` (their wall times summed, every try counted,
        in hours), and a last row ``all``.
    """
    rows = [_machine(json.loads((res.run / "provenance.json").read_text())) for res in _reproduced(profile, root)]
    table = pd.DataFrame(rows, columns=["processor", "hours"]).groupby("processor").agg(runs=("hours", "size"),
                                                                                       hours=("hours", "sum"))
    table.loc["all"] = [table["runs"].sum(), table["hours"].sum()]
    return table.astype({"runs": int})


def epoch_times(profile: str, root: str | Path | None = None) -> pd.DataFrame:
    """How long a training epoch of each model takes on each processor, at ``profile``.

    Read from the histories of the same runs as :func:`reproduction_time`. The kinds of
    machine differ by model, not by one factor: plan a reproduction with this table
    (``mrife reproduce --plan`` does, on the machine it runs on).

    Returns:
        A DataFrame indexed by model (``model.name``), one column per processor (as in
        :func:`reproduction_time`): the median seconds of an epoch over every epoch of
        every finished run, NaN where the processor trained no run of the model.
    """
    runs = [(res.config.model.name, _machine(json.loads((res.run / "provenance.json").read_text()))["processor"],
             res.history["seconds"]) for res in _reproduced(profile, root)]
    rows = [(model, processor, s) for model, processor, seconds in runs for s in seconds]
    table = pd.DataFrame(rows, columns=["model", "processor", "seconds"])
    return table.pivot_table(index="model", columns="processor", values="seconds", aggfunc="median")


def _reproduced(profile: str, root: str | Path | None) -> list[Result]:
    """Every finished run ``mrife reproduce`` trains for ``profile``, each once: the seeds of
    its experiments and of the candidates of the open choices it judges."""
    names = dict.fromkeys([*profile_experiments(profile), *(c for choice in CHOICES for c in candidates(profile, choice))])
    runs = {res.run: res for name in names for res in results_if_any(profile, name, root)}
    return list(runs.values())


def _machine(prov: dict) -> dict:
    """What trained a run and for how long (hours), from its provenance."""
    on_cpu = prov.get("device", "cpu") == "cpu"
    return {"processor": (_processor(prov) or "not recorded") if on_cpu else prov["device"],
            "hours": prov["wall_time_s"] / 3600}


def results(profile: str, experiment: str, root: str | Path | None = None) -> list[Result]:
    """Every finished seed of ``experiment`` at ``profile``, by seed.

    The seeds looked for are the profile's defaults (:func:`mrife.experiments.seeds_for`) and any other
    seed ``index.json`` records for the experiment (``mrife reproduce --seeds``); a seed
    whose run is missing or unfinished is skipped, and a run trained with other
    ``--set`` overrides than the profile's is not found (its config hash differs).

    Raises:
        FileNotFoundError: no seed is finished (the message says how to produce them).
    """
    seeds = set(seeds_for(profile, experiment))
    index_path = Path(root or results_root()) / profile / "index.json"
    if index_path.exists():
        recorded = json.loads(index_path.read_text()).get(experiment)
        if isinstance(recorded, dict):
            seeds |= {int(s) for s in recorded}
    found = []
    for seed in sorted(seeds):
        try:
            found.append(result(profile, experiment, root, seed))
        except FileNotFoundError:
            pass
    if not found:
        raise FileNotFoundError(f"no finished run of {experiment!r} at profile {profile!r} (seeds {sorted(seeds)}) "
                                f"under {index_path.parent}; produce them with " + _how_to_produce(profile, experiment))
    return found


def results_if_any(profile: str, experiment: str, root: str | Path | None = None) -> list[Result]:
    """:func:`results`, or an empty list when no seed is finished."""
    try:
        return results(profile, experiment, root)
    except FileNotFoundError:
        return []


def scene_counts(res: Result) -> dict[str, ConfusionMatrix]:
    """A finished run's best checkpoint on its test split, scene by scene: scene -> ConfusionMatrix.

    Read from the run's ``test_confusions.json`` (``fit`` writes it): no checkpoint is
    loaded and nothing is evaluated again.
    """
    path = res.run / "test_confusions.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the run was trained before runs kept their per-scene test "
                                f"counts; delete {res.run} and train it again with " +
                                _how_to_produce(res.config.profile, res.experiment, res.seed))
    return {scene: ConfusionMatrix.from_counts(*counts) for scene, counts in json.loads(path.read_text()).items()}


def scene_confusions(runs: dict[str, Result]) -> dict[str, dict[str, ConfusionMatrix]]:
    """Each run's test counts by scene, label -> scene -> ConfusionMatrix: the input to
    :func:`mrife.metrics.scene_bootstrap` (one run per label; for several seeds per
    label see :func:`seed_scene_confusions`)."""
    return {label: scene_counts(res) for label, res in runs.items()}


def seed_scene_confusions(runs: dict[str, list[Result]]) -> dict[str, dict[int, dict[str, ConfusionMatrix]]]:
    """Every seed's test counts by scene, label -> seed -> scene -> ConfusionMatrix.

    ``runs`` maps a label to the Results of its seeds (e.g. :func:`results`). The input
    to :func:`mrife.metrics.hierarchical_bootstrap`.
    """
    out: dict[str, dict[int, dict[str, ConfusionMatrix]]] = {}
    for label, seeds in runs.items():
        out[label] = {}
        for res in seeds:
            if res.seed in out[label]:
                raise ValueError(f"{label!r} has two runs of seed {res.seed}")
            out[label][res.seed] = scene_counts(res)
    return out
