"""Every run the book needs, per profile and training seed, and the tables that compare them with the paper.

``mrife reproduce --profile P`` trains each experiment below for each of its seeds
(:func:`seeds_for`) into ``results/P/``, a run directory per experiment and seed named by
the hash of its resolved config, seed included (see :mod:`mrife.runs`): a finished run is
never trained twice and an interrupted one resumes. Chapters read the runs back with
:func:`result` (one seed), :func:`finished` (one seed of several experiments),
:func:`results` (every finished seed), :func:`seed_table` (those seeds run by run),
:func:`compare` (mean over seeds beside the paper), :func:`seed_bootstrap` and
:func:`verdicts` (intervals over seeds and test scenes; paired by seed too, and
:func:`seed_pairing` reads on validation whether seeds go together) and :func:`choice_table`
(an open choice's candidates on the validation split); :mod:`mrife.findings` says in
words what they show.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mrife import figures
from mrife.config import RunConfig, load_profile, load_yaml
from mrife.distributed import distributed, main_process
from mrife.findings import NOT_LEARNING, verdict
from mrife.metrics import METRIC_NAMES, ConfusionMatrix, hierarchical_bootstrap
from mrife.paper import Claim
from mrife.runs import changed_tree, claim, is_finished, run_dir_for, write_json
from mrife.train import fit

# experiment -> overrides of the profile, and where the book shows it.
EXPERIMENTS: dict[str, list[str]] = {
    "deeplabv3plus": ["model.name=deeplabv3plus"],  # Table III baseline (the paper's Table IV B has its numbers)
    "mrife": ["model.name=mrife"],  # Tables III-VI, Figs. 4-8
    # Table III middle row. Its phase lengths were chosen on the validation split over 3
    # seeds (CHOICES["icssn"]; the config's defaults keep the first values, 5 and 15,
    # because every run's hash includes them).
    "icssn": ["model.name=icssn", "model.cls_steps=2", "model.seg_steps=18"],
    "segbranch": ["model.name=segbranch"],  # Table IV's B: MRIFE's segmentation branch alone; Fig. 7
    "mrife-mfm": ["model.name=mrife", "loss.beta=0"],  # Table IV "B+M"
    "mrife-no-distill": ["model.name=mrife", "model.ema_decay=0"],  # Fig. 6: teacher = current student
    "mrife-block16": ["model.name=mrife", "model.output_stride=16"],  # Table V as the paper: 16-px blocks at OS 16
    "mrife-block16-os8": ["model.name=mrife", "mask.block=16"],  # Table V, the block size alone: OS 8, 2 x 2 points pooled
    "mrife-center": ["model.name=mrife", "mask.strategy=center+back"],  # Table VI
    "mrife-all": ["model.name=mrife", "mask.strategy=all"],  # Table VI
    "mrife-concat": ["model.name=mrife", "model.fusion=concat"],  # fusion cross-validation, Fig. 8
}

# What the paper leaves open, decided on the validation split (never the test split):
# choice -> its candidates, the first the default it is judged against, each an entry of
# CANDIDATES or EXPERIMENTS, trained over the profile's seeds by `mrife reproduce
# --choices` and read by `choice_table`. The experiments run the decided candidate: the
# default where it was kept (an experiment itself), the chosen one otherwise (the
# experiment takes its overrides). NOTES.md lists the questions.
CANDIDATES: dict[str, list[str]] = {
    # Which features the decoder fuses in training, and the teacher's batch norm.
    "fusion-teacher": ["model.name=mrife", "model.fuse_train=teacher"],
    "fusion-teacher-bn": ["model.name=mrife", "model.fuse_train=teacher", "model.teacher_bn=batch"],
    "fusion-student-bn": ["model.name=mrife", "model.teacher_bn=batch"],
    "fusion-ema-099": ["model.name=mrife", "model.ema_decay=0.99"],  # an EMA horizon of 100 steps, not 250
    # The scale of SFCE: Eq. (4)'s sum over anchors, or their mean, and its weight beta.
    "sfce-mean": ["model.name=mrife", "loss.sfce_reduction=mean"],
    "sfce-mean-beta-0.1": ["model.name=mrife", "loss.sfce_reduction=mean", "loss.beta=0.1"],
    "sfce-sum-beta-0.01": ["model.name=mrife", "loss.beta=0.01"],
    # ICSSN's open values, chosen again on validation (they were first judged on test):
    # the first defaults, then one change each; the phase lengths 2 and 18 were chosen.
    "icssn-first-default": ["model.name=icssn"],
    "icssn-no-sub-contrast": ["model.name=icssn", "model.sub_con_weight=0"],
    "icssn-no-obj-contrast": ["model.name=icssn", "model.obj_con_weight=0"],
    "icssn-short-cls-phase": ["model.name=icssn", "model.cls_steps=2", "model.seg_steps=18"],
    # bf16 autocast against fp32: kept only if it trains as well (it is 1.8x faster on a
    # CPU with AMX; README's step benchmark).
    "precision-bf16": ["model.name=mrife", "train.precision=bf16"],
}
CHOICES: dict[str, tuple[str, ...]] = {
    "fusion": ("mrife", "fusion-teacher", "fusion-teacher-bn", "fusion-student-bn", "fusion-ema-099"),
    "sfce": ("mrife", "sfce-mean", "sfce-mean-beta-0.1", "sfce-sum-beta-0.01"),
    "icssn": ("icssn-first-default", "icssn-no-sub-contrast", "icssn-no-obj-contrast", "icssn-short-cls-phase"),
    "precision": ("mrife", "precision-bf16"),
}


def _overrides(experiment: str) -> list[str]:
    """The overrides of an experiment or a candidate; KeyError listing the valid names."""
    named = EXPERIMENTS | CANDIDATES
    if experiment not in named:
        raise KeyError(f"unknown experiment {experiment!r}; valid: {', '.join(named)}")
    return named[experiment]


def results_root() -> Path:
    """``$MRIFE_RESULTS``, or ``results/`` in the working directory."""
    return Path(os.environ.get("MRIFE_RESULTS", "results"))


# Training seeds per profile: each seed is its own run (the seed is part of the config
# hash), so the spread over seeds -- training noise -- is measured, not guessed. The
# experiments of Tables III and IV, whose differences the paper's claims rest on, get
# more seeds where there is time for them.
SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "cpu": (0, 1, 2), "paper": (0, 1, 2), "cpu-sizing": (0, 1)}
TABLE_EXPERIMENTS = ("deeplabv3plus", "mrife", "icssn", "segbranch", "mrife-mfm")  # Tables III and IV
TABLE_SEEDS: dict[str, tuple[int, ...]] = {"cpu": (0, 1, 2, 3, 4), "paper": (0, 1, 2, 3, 4)}


# Profiles that train a few experiments, not the book's every one (default of `reproduce`).
PROFILE_EXPERIMENTS: dict[str, tuple[str, ...]] = {"cpu-sizing": ("deeplabv3plus", "segbranch", "mrife")}


def seeds_for(profile: str, experiment: str) -> tuple[int, ...]:
    """The training seeds ``mrife reproduce`` runs for ``experiment`` at ``profile`` by default."""
    _overrides(experiment)
    if experiment in TABLE_EXPERIMENTS and profile in TABLE_SEEDS:
        return TABLE_SEEDS[profile]
    return SEEDS.get(profile, (0,))


def experiment_config(profile: str, experiment: str, overrides=(), seed: int | None = None) -> RunConfig:
    """The config of ``experiment`` (or candidate) at ``profile``; ``seed`` (when given) is
    applied last, as ``seed=N``."""
    return load_profile(profile, [*_overrides(experiment), *overrides,
                                  *([f"seed={int(seed)}"] if seed is not None else [])])


def reproduce(profile: str, root: str | Path | None = None, experiments=None, overrides=(),
              progress: bool = True, seeds=None, force: bool = False) -> dict[str, dict[int, Path]]:
    """Train (or resume, or skip) each experiment of ``profile`` at each seed.

    Args:
        experiments: names of :data:`EXPERIMENTS` or :data:`CANDIDATES` (default: the
            profile's :data:`PROFILE_EXPERIMENTS`, else every experiment; no candidate).
        overrides: ``key=value`` settings applied to every run (not ``seed``: use ``seeds``).
        seeds: training seeds for every experiment (default: :func:`seeds_for` each one:
            :data:`SEEDS` of the profile, :data:`TABLE_SEEDS` for the experiments of
            Tables III and IV).
        force: train every planned run again from the start, finished or not. Without it a
            finished run is skipped, and the line that says so also says when the run was
            trained from a changed tree (code no commit holds: :func:`mrife.runs.changed_tree`).

    The work is seed-major -- every experiment at the first seed, then every one at the
    next -- so that a reproduction stopped part way has the same number of seeds for each
    experiment (give or take one), not all seeds of a few. Runs are trained one after the
    other; the threads each uses are the training config's business.
    ``results/<profile>/index.json`` maps each experiment to ``{seed: run directory name}``
    and is rewritten after every run, so the chapters can be built from a partial
    reproduction. Each run of an experiment also gets its figure data (:mod:`mrife.figures`)
    when it has a checkpoint and not yet the file.

    Returns:
        experiment -> seed -> run directory, for the runs of this call.
    """
    names = list(experiments or PROFILE_EXPERIMENTS.get(profile, EXPERIMENTS))
    for name in names:
        _overrides(name)
    if any(item.partition("=")[0].strip() == "seed" for item in overrides):
        raise ValueError("set the training seeds with `seeds` (--seeds on the command line), not a seed= override")
    plan = {name: tuple(int(s) for s in seeds) if seeds is not None else seeds_for(profile, name) for name in names}
    root = Path(root or results_root()) / profile
    root.mkdir(parents=True, exist_ok=True)
    index_path = root / "index.json"
    runs: dict[str, dict[int, Path]] = {}
    for seed in sorted({s for planned in plan.values() for s in planned}):
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
                _add_figures(run, f"[{profile}] {name} seed {seed}")
            # read again just before writing: another `mrife reproduce` may share the folder
            index = json.loads(index_path.read_text()) if index_path.exists() else {}
            index.setdefault(name, {})[str(seed)] = run.name
            write_json(index_path, index)
            if not done:
                print(f"[{profile}] {name} seed {seed}: done in {time.perf_counter() - tic:.0f} s", flush=True)
    return runs


def _add_figures(run: Path, label: str) -> None:
    """Write the run's figure data if it is missing and the checkpoint is there."""
    if (run / figures.FILE).exists():
        return
    if not (run / "best.pt").exists():
        print(f"{label}: no {figures.FILE} and no checkpoint to make it from; the book draws no model figure "
              "of this run", flush=True)
        return
    figures.write(run)


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
        reaches :data:`mrife.findings.NOT_LEARNING` (a rule on the validation split, so
        leaving out the runs that fail it never looks at the test split)."""
        return self.best_val >= NOT_LEARNING


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
    return _read(experiment, run)


def _read(experiment: str, run: Path) -> Result:
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


def drawn(profile: str, experiments, root: str | Path | None = None) -> dict[str, figures.FigureData]:
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
        with_data = [res for res in runs if (res.run / figures.FILE).exists()]
        if not with_data:
            print(f"{label}: none of its finished seeds ({', '.join(str(res.seed) for res in runs)}) has "
                  f"{figures.FILE}; `mrife reproduce --profile {profile} --only {experiment} --seeds N --force` "
                  "trains seed N again with it (and its numbers with it)")
            continue
        found[label], seeds[label] = figures.read(with_data[0].run), with_data[0].seed
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
            found[f"{cfg.model.name}, {cfg.train.epochs} epochs"] = _read(cfg.model.name, run)
    return found


def plan(profile: str, seconds: dict[str, float], root: str | Path | None = None, experiments=None,
         seeds=None) -> pd.DataFrame:
    """The runs ``mrife reproduce --profile profile`` would still train, in its order (seed
    by seed), and the time each is expected to take.

    Args:
        seconds: model name -> seconds of one training epoch (e.g. :func:`mrife.runs.epoch_seconds` of
            earlier runs at the same geometry, on the machine that will train).
        experiments, seeds: as for :func:`reproduce` (default: the profile's).

    Returns:
        A DataFrame with one row per missing run: ``experiment``, ``seed``, ``model``,
        ``epochs`` and ``expected (s)`` (epochs x the model's epoch seconds; NaN for a model
        ``seconds`` does not have). A finished run has no row.
    """
    names = list(experiments or PROFILE_EXPERIMENTS.get(profile, EXPERIMENTS))
    wanted = {name: tuple(seeds) if seeds is not None else seeds_for(profile, name) for name in names}
    rows = []
    for seed in sorted({s for planned in wanted.values() for s in planned}):
        for name in names:
            cfg = experiment_config(profile, name, seed=seed)
            if seed in wanted[name] and not is_finished(run_dir_for(cfg, Path(root or results_root()) / profile)):
                rows.append({"experiment": name, "seed": seed, "model": cfg.model.name, "epochs": cfg.train.epochs,
                             "expected (s)": cfg.train.epochs * seconds.get(cfg.model.name, np.nan)})
    return pd.DataFrame(rows, columns=["experiment", "seed", "model", "epochs", "expected (s)"])


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


def results(profile: str, experiment: str, root: str | Path | None = None) -> list[Result]:
    """Every finished seed of ``experiment`` at ``profile``, by seed.

    The seeds looked for are the profile's defaults (:func:`seeds_for`) and any other
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


def compare(profile: str, rows: dict[str, str], paper_table: dict[str, dict[str, float]],
            metrics=None, root=None) -> pd.DataFrame:
    """The paper's numbers beside ours, over every finished training seed.

    Args:
        rows: table row label -> experiment name (``None`` for a row we do not run).
        paper_table: row label -> metric -> the paper's value (from :mod:`mrife.paper`).
        metrics: columns to show (default: those of the paper's table).

    Returns:
        A DataFrame indexed by row label with columns ``(metric, source)``, source one of
        ``"paper"`` (the paper's value, "" when it has none), ``"ours"`` (the mean over our
        finished seeds of each seed's test metric), ``"sd"`` (their standard deviation,
        ddof 1; "" with fewer than two seeds) and ``"n"`` (how many seeds). A run that does
        not exist yet shows "not run" as ours, "" as sd and 0 as n.

    Raises:
        KeyError: a row names an experiment that does not exist (the message lists them).
    """
    unknown = sorted(e for e in rows.values() if e is not None and e not in EXPERIMENTS)
    if unknown:
        raise KeyError(f"unknown experiments {unknown} in the rows; valid: {', '.join(EXPERIMENTS)}")
    metrics = metrics or list(next(iter(paper_table.values())))
    table = {}
    for label, experiment in rows.items():
        try:
            tests = [res.test for res in results(profile, experiment, root)] if experiment else []
        except FileNotFoundError:
            tests = []
        paper_row = paper_table.get(label, {})
        cells = {}
        for m in metrics:
            values = [float(t[m]) for t in tests if m in t]
            cells[(m, "paper")] = paper_row.get(m, "")
            cells[(m, "ours")] = float(np.mean(values)) if values else "not run"
            cells[(m, "sd")] = float(np.std(values, ddof=1)) if len(values) > 1 else ""
            cells[(m, "n")] = len(values)
        table[label] = cells
    df = pd.DataFrame.from_dict(table, orient="index")
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "source"])
    return df


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
        learned_only: leave out the seeds that never learned (:attr:`Result.learned`), to
            see whether a verdict rests on them.
        paired: compare the two sides seed by seed, on the seeds both have, resampling
            those seeds together (``paired_seeds`` of the bootstrap; :func:`seed_pairing`
            reads on the validation split whether the sides' seeds go together).

    Every finished seed of each experiment (:func:`results`) is re-tested scene by scene
    (:func:`seed_scene_confusions`, once per experiment), and the difference
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
        (:func:`mrife.findings.verdict`; "not run: <experiments>" when an experiment has no
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
        try:
            found[experiment] = results(profile, experiment, root)
        except FileNotFoundError:
            continue
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
        (how many both have), ``r`` (Pearson's correlation over those seeds of the two
        sides' best validation lIoU; NaN below 3 seeds or where a side does not vary),
        ``paired sd`` (the standard deviation over seeds of focus minus other, seed by
        seed) and ``independent sd`` (what it would be if the seeds had nothing in
        common: the root of the sum of the two sides' variances); both sds ddof 1. A
        claim with a side not run has 0 seeds and NaN elsewhere.
    """
    best = {}  # experiment -> seed -> best validation lIoU, each experiment read once
    for experiment in dict.fromkeys(e for _, f, o, *_ in claims for e in (f, o)):
        try:
            best[experiment] = {res.seed: res.best_val for res in results(profile, experiment, root)}
        except FileNotFoundError:
            best[experiment] = {}
    rows = {}
    for label, focus, other, *_ in claims:
        common = sorted(set(best[focus]) & set(best[other]))
        a, b = (np.array([best[e][k] for k in common]) for e in (focus, other))
        varies = len(common) > 2 and a.std() > 0 and b.std() > 0
        rows[label] = {"focus": focus, "other": other, "seeds": len(common),
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
        lIoU`` (of the best-validation checkpoint), ``learned`` (:attr:`Result.learned`)
        and ``first epoch`` (the first epoch, from 1, whose validation lIoU reaches
        :data:`mrife.findings.NOT_LEARNING`; missing for a run that never learned).
    """
    table = {}
    for label, experiment in rows.items():
        try:
            runs = results(profile, experiment, root)
        except FileNotFoundError:
            continue
        for res in runs:
            reached = np.flatnonzero(res.history["val_lIoU"].to_numpy() >= NOT_LEARNING)
            table[(label, res.seed)] = {"best val lIoU": res.best_val,
                                        "test lIoU": float(res.test["lIoU"]), "learned": res.learned,
                                        "first epoch": int(reached[0]) + 1 if len(reached) else pd.NA}
    columns = ["best val lIoU", "test lIoU", "learned", "first epoch"]
    index = pd.MultiIndex.from_tuples(list(table), names=["model", "seed"])
    return pd.DataFrame(list(table.values()), index=index, columns=columns).astype({"first epoch": "Int64"})


def choice_table(profile: str, choice: str, root=None, min_seeds: int = 3) -> pd.DataFrame:
    """The candidates of an open choice (:data:`CHOICES`) on the validation split.

    Each candidate's score is the best validation lIoU of its run (the epoch whose
    checkpoint is kept), averaged over its finished seeds. The decision rule: the
    candidate with the highest mean is ``chosen`` when it leads the default (the
    candidate listed first) by more than the larger of their two standard deviations
    over seeds; otherwise the choice is ``within seed noise`` and the default stays (as it
    does when it leads itself). Nothing is decided before every candidate has
    ``min_seeds`` seeds (the leader is then marked as leading, with too few seeds). The
    test split is never read.

    Until 2026-12-01 the leader was measured against the runner-up, not the default:
    two candidates that both beat the default by far, within noise of each other, would
    have kept the default. The choices decided before (fusion, precision) come out the
    same under both rules.

    Returns:
        A DataFrame indexed by candidate with columns ``overrides``, ``val lIoU``
        (mean), ``sd``, ``n`` (seeds), ``decision``, ``vs default`` and ``vs default sd``
        (the candidate minus the default, seed by seed over the seeds both have: mean and
        sd; a paired view that shows more than the rule uses, not part of the decision)
        and ``per seed`` (seed -> best validation lIoU, for
        :func:`mrife.plots.choice_seeds`); a candidate with no finished run shows n 0 and
        "not run".
    """
    if choice not in CHOICES:
        raise KeyError(f"unknown choice {choice!r}; valid: {', '.join(CHOICES)}")
    rows = {}
    for name in CHOICES[choice]:
        try:
            per_seed = {res.seed: res.best_val for res in results(profile, name, root)}
        except FileNotFoundError:
            per_seed = {}
        best = list(per_seed.values())
        rows[name] = {"overrides": " ".join(o for o in _overrides(name) if not o.startswith("model.name=")) or
                      "(default)", "val lIoU": float(np.mean(best)) if best else np.nan,
                      "sd": float(np.std(best, ddof=1)) if len(best) > 1 else np.nan, "n": len(best),
                      "per seed": per_seed}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.insert(4, "decision", ["not run" if n == 0 else "" for n in table["n"]])
    default = CHOICES[choice][0]
    default_seeds = rows[default]["per seed"]
    paired = [[value - default_seeds[s] for s, value in row["per seed"].items() if s in default_seeds]
              for row in rows.values()]
    table.insert(5, "vs default", [float(np.mean(d)) if d else np.nan for d in paired])
    table.insert(6, "vs default sd", [float(np.std(d, ddof=1)) if len(d) > 1 else np.nan for d in paired])
    ranked = table[table["n"] > 0].sort_values("val lIoU", ascending=False, kind="stable")  # ties: listed order
    if len(ranked) >= 2:
        top = ranked.index[0]
        if table["n"].min() < min_seeds:
            table.loc[top, "decision"] = f"leading; undecided below {min_seeds} seeds"
        elif top == default:
            table.loc[top, "decision"] = "kept: the default leads"
        elif ranked.loc[top, "val lIoU"] - ranked.loc[default, "val lIoU"] > np.nanmax(
                [ranked.loc[top, "sd"], ranked.loc[default, "sd"], 0.0]):
            table.loc[top, "decision"] = "chosen"
        else:
            table.loc[top, "decision"] = "best, within seed noise"
            table.loc[default, "decision"] = "kept: no clear winner"
    return table


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
    again = _read(experiment, fit(experiment_config(profile, experiment, seed=seed), scratch, progress, force=True))

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
