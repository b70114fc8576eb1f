"""``mrife reproduce``: train every run the book needs that is not finished yet.

``mrife reproduce --profile P`` trains each experiment of :mod:`mrife.experiments` for each
of its seeds (:func:`~mrife.experiments.seeds_for`) into ``results/P/``, a run directory per
experiment and seed named by the hash of its resolved config, seed included (see
:mod:`mrife.runs`): a finished run is never trained twice and an interrupted one resumes.
:func:`plan` lists the runs still to train and the time each is expected to take;
:func:`check` trains one run again and sets it beside the committed seeds. The chapters read
the runs back with :mod:`mrife.results` and compare them with :mod:`mrife.tables`.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mrife import figure_data
from mrife.compute import device_kind, resolve_device
from mrife.distributed import distributed, main_process
from mrife.experiments import (CANDIDATES, EXPERIMENTS, READ_ONLY_PROFILES, experiment_config, overrides_of,
                               profile_experiments, results_root, seeds_for)
from mrife.metrics import METRIC_NAMES
from mrife.results import Result, read_result, results
from mrife.runs import changed_tree, claim, is_finished, locked, run_dir_for, write_json
from mrife.train import fit


def reproduce(profile: str, root: str | Path | None = None, experiments=None, overrides=(),
              progress: bool = True, seeds=None, force: bool = False) -> dict[str, dict[int, Path]]:
    """Train (or resume, or skip) each experiment of ``profile`` at each seed.

    Args:
        experiments: names of :data:`~mrife.experiments.EXPERIMENTS` or
            :data:`~mrife.experiments.CANDIDATES` (default: the profile's
            :data:`~mrife.experiments.PROFILE_EXPERIMENTS`, else every experiment; no candidate).
        overrides: ``key=value`` settings applied to every run (not ``seed``: use ``seeds``).
        seeds: training seeds for every experiment (default:
            :func:`~mrife.experiments.seeds_for` each one: :data:`~mrife.experiments.SEEDS` of
            the profile, :data:`~mrife.experiments.TABLE_SEEDS` for the experiments of Tables
            III and IV).
        force: train every planned run again from the start, finished or not. Without it a
            finished run is skipped, and the line that says so also says when the run was
            trained from a changed tree (code no commit holds: :func:`mrife.runs.changed_tree`).

    The work is seed-major -- every experiment at the first seed, then every one at the
    next -- so that a reproduction stopped part way has the same number of seeds for each
    experiment (give or take one), not all seeds of a few; the seeds whose runs so far were
    trained on another kind of processor go last (:func:`seed_order`). Runs are trained one
    after the other; the threads each uses are the training config's business.
    ``results/<profile>/index.json`` maps each experiment to ``{seed: run directory name}``
    and is rewritten after every run, so the chapters can be built from a partial
    reproduction. Each run of an experiment also gets its figure data (:mod:`mrife.figure_data`)
    when it has a checkpoint and not yet the file.

    Returns:
        experiment -> seed -> run directory, for the runs of this call.
    """
    if profile in READ_ONLY_PROFILES:
        raise ValueError(f"profile {profile!r} is read-only, {READ_ONLY_PROFILES[profile]}: its runs are committed "
                         f"under results/{profile}/ (train one again with `mrife train --profile {profile}`)")
    names = list(experiments or profile_experiments(profile))
    for name in names:
        overrides_of(name)
    if any(item.partition("=")[0].strip() == "seed" for item in overrides):
        raise ValueError("set the training seeds with `seeds` (--seeds on the command line), not a seed= override")
    plan = {name: tuple(int(s) for s in seeds) if seeds is not None else seeds_for(profile, name) for name in names}
    root = Path(root or results_root()) / profile
    root.mkdir(parents=True, exist_ok=True)
    index_path = root / "index.json"
    runs: dict[str, dict[int, Path]] = {}
    seeds = sorted({s for planned in plan.values() for s in planned})
    if not distributed():  # every rank must walk the same order: under torchrun, by seed
        here = trained_on(profile, names[0], overrides)
        seeds, elsewhere = seed_order(root, seeds, here)
        if elsewhere:
            print(f"[{profile}] seeds {', '.join(map(str, elsewhere))} last: their runs so far were trained on "
                  f"another kind of processor than this {here}", flush=True)
    for seed in seeds:
        for name in names:
            if seed not in plan[name]:
                continue
            cfg = experiment_config(profile, name, overrides, seed)
            run = run_dir_for(cfg, root)
            done, main = is_finished(run) and not force, main_process()  # under torchrun, rank 0 reports and writes
            # Several processes sharing the folder each take another run (torchrun's ranks train one run together)
            with claim(run) if not done and not distributed() else contextlib.nullcontext() as holder:
                if holder:
                    print(f"[{profile}] {name} seed {seed}: being trained by process {holder['pid']} on "
                          f"{holder['host']}, skipped ({run.name})", flush=True)
                    continue
                if main:
                    state = "training"
                    if done:  # a finished run whose code no commit holds is worth training again
                        why = changed_tree(run)
                        state = "finished, skipped" + (f"; {why}: --force trains it again" if why else "")
                    print(f"[{profile}] {name} seed {seed}: {state} ({run.name})", flush=True)
                tic = time.perf_counter()
                runs.setdefault(name, {})[seed] = fit(cfg, root, progress=progress, force=force)
            if not main:
                continue
            if name in EXPERIMENTS:  # the chapters draw experiments, never a candidate of a choice
                _add_figures(run, f"[{profile}] {name} seed {seed}", progress)
            with locked(index_path):  # another `mrife reproduce` may share the folder
                index = json.loads(index_path.read_text()) if index_path.exists() else {}
                index.setdefault(name, {})[str(seed)] = run.name
                write_json(index_path, index)
            if not done:
                print(f"[{profile}] {name} seed {seed}: done in {time.perf_counter() - tic:.0f} s", flush=True)
    return runs


def trained_on(profile: str, experiment: str, overrides=()) -> str:
    """The kind of processor a run of ``experiment`` at ``profile`` would train on here
    (:func:`mrife.compute.device_kind` of its configured device)."""
    return device_kind(resolve_device(experiment_config(profile, experiment, overrides).train.device))


def seed_order(folder: Path, seeds, here: str) -> tuple[list[int], list[int]]:
    """``seeds`` in the order to train them on a machine of kind ``here``
    (:func:`mrife.compute.device_kind`), and those put last.

    A seed draws the same training noise for two models only on one kind of processor, so
    a claim's two runs of a seed are best trained on one kind. A seed goes last when the
    finished runs of it in ``folder`` (a profile's results, as its ``index.json`` lists
    them) were trained more often on another kind than on ``here``; a seed with no run
    yet does not. By seed within each group.
    """
    index_path = Path(folder) / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    kinds: dict[int, Counter] = {}
    for by_seed in index.values():
        for seed, name in by_seed.items():
            prov = Path(folder) / name / "provenance.json"
            if prov.exists():
                recorded = json.loads(prov.read_text())
                kinds.setdefault(int(seed), Counter())[recorded.get("cpu_kind") or recorded.get("processor")] += 1
    elsewhere = sorted(s for s in seeds if s in kinds and kinds[s][here] < max(kinds[s].values()))
    return [s for s in sorted(seeds) if s not in elsewhere] + elsewhere, elsewhere


def _add_figures(run: Path, label: str, progress: bool = True) -> None:
    """Write the run's figure data if it is missing and the checkpoint is there."""
    if (run / figure_data.FILE).exists():
        return
    if not (run / "best.pt").exists():
        print(f"{label}: no {figure_data.FILE} and no checkpoint to make it from; the book draws no model figure "
              "of this run", flush=True)
        return
    figure_data.write(run, progress)


def plan(profile: str, seconds: dict[str, float], root: str | Path | None = None, experiments=None,
         seeds=None, missing_only: bool = True, here: str | None = None) -> pd.DataFrame:
    """The runs ``mrife reproduce --profile profile`` would still train, in its order (seed
    by seed), and the time each is expected to take.

    Args:
        seconds: model name -> seconds of one training epoch (e.g. :func:`mrife.runs.epoch_seconds` of
            earlier runs at the same geometry, on the machine that will train).
        experiments, seeds: as for :func:`reproduce` (default: the profile's).
        missing_only: leave out the finished runs (``False``: every run of the profile).
        here: the kind of machine that will train (:func:`trained_on`): the seeds go in
            :func:`seed_order`, as ``reproduce`` takes them there; ``None``: by seed.

    Returns:
        A DataFrame with one row per run: ``experiment``, ``seed``, ``model``,
        ``epochs`` and ``expected (s)`` (epochs x the model's epoch seconds; NaN for a model
        ``seconds`` does not have).
    """
    names = list(experiments or profile_experiments(profile))
    wanted = {name: tuple(seeds) if seeds is not None else seeds_for(profile, name) for name in names}
    rows = []
    order = sorted({s for planned in wanted.values() for s in planned})
    if here is not None:
        order = seed_order(Path(root or results_root()) / profile, order, here)[0]
    for seed in order:
        for name in names:
            cfg = experiment_config(profile, name, seed=seed)
            done = missing_only and is_finished(run_dir_for(cfg, Path(root or results_root()) / profile))
            if seed in wanted[name] and not done:
                rows.append({"experiment": name, "seed": seed, "model": cfg.model.name, "epochs": cfg.train.epochs,
                             "expected (s)": cfg.train.epochs * seconds.get(cfg.model.name, np.nan)})
    return pd.DataFrame(rows, columns=["experiment", "seed", "model", "epochs", "expected (s)"])


class Budget(NamedTuple):
    """What :func:`epochs_within` read: the epochs each run trains, the hours of every run
    at that count one after another, and how many runs that is."""

    epochs: int
    hours: float
    runs: int


def epochs_within(profile: str, seconds: dict[str, float], epochs: int, hours: float,
                  experiments=None) -> Budget:
    """The epoch count of ``profile`` within a budget of machine time, the hours at it and the runs counted.

    ``epochs`` (what the plateau rule read) if every run of the profile (each experiment
    at its seeds, finished or not; :func:`plan`), trained one after another at ``seconds``
    an epoch by model, takes about ``hours`` or less (to the hour: under ``hours`` + 0.5,
    since the epoch times are those of other runs); otherwise the largest count that does.

    Raises:
        ValueError: a model of the runs has no epoch time in ``seconds``.
    """
    every = plan(profile, seconds, experiments=experiments, missing_only=False)
    per_epoch = (every["expected (s)"] / every["epochs"]).sum(skipna=False)  # seconds of one epoch of every run
    if np.isnan(per_epoch):
        raise ValueError(f"no epoch time for {sorted(set(every.loc[every['expected (s)'].isna(), 'model']))}")
    fitted = min(epochs, math.ceil((hours + 0.5) * 3600 / per_epoch) - 1)
    return Budget(fitted, fitted * per_epoch / 3600, len(every))


SPREAD = 2.0  # --check: a retrained run is within the committed seeds' spread inside mean ± SPREAD sd


def check(profile: str, experiment: str, seed: int | None = None, root: str | Path | None = None,
          progress: bool = True) -> pd.DataFrame:
    """Train one run again from scratch and set it, metric by metric, beside the committed seeds.

    The run (``experiment`` at ``profile`` and ``seed``, default the profile's first seed)
    is trained into ``<root>/check/<profile>/``, replacing an earlier check of it; the
    committed runs under ``<root>/<profile>/`` are only read. For a candidate of an open
    choice only the validation score is compared (its test split stays unread).

    Returns:
        A DataFrame indexed by metric (``val lIoU``: the best validation lIoU, then each
        test metric) with columns ``retrained``, ``committed`` (the committed run of the same
        seed; NaN when there is none), ``seeds mean``, ``seeds sd``, ``n`` (committed seeds),
        ``low``, ``high`` (mean ± :data:`SPREAD` sd) and ``within`` ("yes", "no", or "one
        seed" when a single committed seed gives no spread).

    Raises:
        FileNotFoundError: no committed seed of the experiment (before anything is trained).
    """
    committed = results(profile, experiment, root)
    seed = seeds_for(profile, experiment)[0] if seed is None else int(seed)
    scratch = Path(root or results_root()) / "check" / profile
    again = read_result(experiment,
                        fit(experiment_config(profile, experiment, seed=seed), scratch, progress, force=True))

    def scores(res: Result) -> dict[str, float]:
        test = {} if experiment in CANDIDATES else {m: float(res.test[m]) for m in METRIC_NAMES}
        return {"val lIoU": res.best_val, **test}

    same = {s.seed: scores(s) for s in committed}.get(seed, {})
    rows = {}
    for metric, value in scores(again).items():
        values = np.array([scores(res)[metric] for res in committed])
        mean, sd = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else np.nan
        low, high = mean - SPREAD * sd, mean + SPREAD * sd
        rows[metric] = {"retrained": value, "committed": same.get(metric, np.nan), "seeds mean": mean,
                        "seeds sd": sd, "n": len(values), "low": low, "high": high,
                        "within": "one seed" if len(values) < 2 else ("yes" if low <= value <= high else "no")}
    return pd.DataFrame.from_dict(rows, orient="index")
