"""Every run the book needs, per profile, and the tables that compare them with the paper.

``mrife reproduce --profile P`` trains each experiment below into ``results/P/``, a run
directory per experiment named by the hash of its resolved config (see
:mod:`mrife.runs`): a finished run is never trained twice and an interrupted one
resumes. Chapters read the runs back with :func:`result` and :func:`compare`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from torch.utils.data import DataLoader

from mrife.config import RunConfig, load_profile, load_yaml
from mrife.data import TileDataset
from mrife.metrics import ConfusionMatrix
from mrife.runs import load_run, run_dir_for, write_json
from mrife.train import build_splits, confusion_by_scene, fit

# experiment -> overrides of the profile, and where the book shows it.
EXPERIMENTS: dict[str, list[str]] = {
    "deeplabv3plus": ["model.name=deeplabv3plus"],  # Table III baseline, Table IV "B"
    "mrife": ["model.name=mrife"],  # Tables III-VI, Figs. 4-8
    "icssn": ["model.name=icssn"],  # Table III middle row
    "segbranch": ["model.name=segbranch"],  # Table IV "B (seg branch)", Fig. 7
    "mrife-mfm": ["model.name=mrife", "loss.beta=0"],  # Table IV "B+M"
    "mrife-no-distill": ["model.name=mrife", "model.ema_decay=0"],  # Fig. 6: teacher = current student
    "mrife-block16": ["model.name=mrife", "model.output_stride=16"],  # Table V: 16 x 16 blocks
    "mrife-center": ["model.name=mrife", "mask.strategy=center+back"],  # Table VI
    "mrife-all": ["model.name=mrife", "mask.strategy=all"],  # Table VI
    "mrife-concat": ["model.name=mrife", "model.fusion=concat"],  # fusion cross-validation, Fig. 8
}


def results_root() -> Path:
    """``$MRIFE_RESULTS``, or ``results/`` in the working directory."""
    return Path(os.environ.get("MRIFE_RESULTS", "results"))


def experiment_config(profile: str, experiment: str, overrides=()) -> RunConfig:
    if experiment not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {experiment!r}; valid: {', '.join(EXPERIMENTS)}")
    return load_profile(profile, [*EXPERIMENTS[experiment], *overrides])


def reproduce(profile: str, root: str | Path | None = None, experiments=None, overrides=(),
              progress: bool = True) -> dict[str, Path]:
    """Train (or resume, or skip) each experiment of ``profile``; returns their run directories.

    ``results/<profile>/index.json`` maps each experiment to its run directory and is
    rewritten after every run, so the chapters can be built from a partial reproduction.
    """
    root = Path(root or results_root()) / profile
    root.mkdir(parents=True, exist_ok=True)
    index_path = root / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    runs = {}
    for name in experiments or EXPERIMENTS:
        cfg = experiment_config(profile, name, overrides)
        done = (run_dir_for(cfg, root) / "test_metrics.json").exists()
        print(f"[{profile}] {name}: {'finished, skipped' if done else 'training'} ({run_dir_for(cfg, root).name})",
              flush=True)
        tic = time.perf_counter()
        runs[name] = fit(cfg, root, progress=progress)
        index[name] = runs[name].name
        write_json(index_path, index)
        if not done:
            print(f"[{profile}] {name}: done in {time.perf_counter() - tic:.0f} s", flush=True)
    return runs


@dataclass
class Result:
    """One finished run, as the chapters read it."""

    experiment: str
    run: Path
    config: RunConfig
    history: pd.DataFrame  # one row per epoch: train_* loss terms, val_* metrics, seconds
    test: dict[str, float]  # test metrics of the best-validation checkpoint


def result(profile: str, experiment: str, root: str | Path | None = None) -> Result:
    """The run of ``experiment`` at ``profile``; a clear error saying how to produce it."""
    cfg = experiment_config(profile, experiment)
    run = run_dir_for(cfg, Path(root or results_root()) / profile)
    if not (run / "test_metrics.json").exists():
        raise FileNotFoundError(
            f"no finished run of {experiment!r} at profile {profile!r} in {run}; produce it with "
            f"`mrife reproduce --profile {profile}` (or `--only {experiment}`)"
        )
    history = pd.DataFrame(json.loads((run / "history.json").read_text()))
    test = json.loads((run / "test_metrics.json").read_text())
    return Result(experiment, run, load_yaml(run / "config.yaml"), history, test)


def compare(profile: str, rows: dict[str, str], paper_table: dict[str, dict[str, float]],
            metrics=None, root=None) -> pd.DataFrame:
    """The paper's numbers beside ours.

    Args:
        rows: table row label -> experiment name (``None`` for a row we do not run).
        paper_table: row label -> metric -> the paper's value (from :mod:`mrife.paper`).
        metrics: columns to show (default: those of the paper's table).

    Returns:
        A DataFrame indexed by row label with columns ``(metric, "paper" | "ours")``; a
        run that does not exist yet shows "not run" instead of a number.

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
            ours = result(profile, experiment, root).test if experiment else {}
        except FileNotFoundError:
            ours = {}
        paper_row = paper_table.get(label, {})
        table[label] = {(m, src): v for m in metrics
                        for src, v in (("paper", paper_row.get(m, "")), ("ours", ours.get(m, "not run")))}
    df = pd.DataFrame.from_dict(table, orient="index")
    df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "source"])
    return df


def scene_confusions(runs: dict[str, Result]) -> dict[str, dict[str, ConfusionMatrix]]:
    """Each run's best checkpoint on its test split: label -> scene -> ConfusionMatrix.

    The input to :func:`mrife.metrics.scene_bootstrap`. Runs on the CPU; the test split
    is built once per data configuration.
    """
    splits: dict[str, TileDataset] = {}
    out = {}
    for label, res in runs.items():
        key = repr(res.config.data)
        if key not in splits:
            tiles = build_splits(res.config, progress=False)["test"]
            splits[key] = TileDataset(tiles, res.config.data.input_size, equalize=res.config.data.equalize)
        loader = DataLoader(splits[key], batch_size=res.config.train.batch_size)
        out[label] = confusion_by_scene(load_run(res.run)[1], loader)
    return out


def leaders(table: pd.DataFrame) -> pd.DataFrame:
    """Which row of a :func:`compare` table is best on each metric, in the paper and in ours.

    Every metric here is better when higher. Returns a DataFrame indexed by metric with
    columns ``paper``, ``ours`` (a row label; "tie: a, b" when the best value is shared,
    "–" when fewer than two rows have a number) and ``same`` (whether they agree).
    """
    out = {}
    for metric in table.columns.get_level_values("metric").unique():
        best = {}
        for source in ("paper", "ours"):
            values = {row: v for row, v in table[(metric, source)].items() if isinstance(v, float)}
            top = max(values.values(), default=None)
            winners = [row for row, v in values.items() if v == top]
            best[source] = ("–" if len(values) < 2 else winners[0] if len(winners) == 1
                            else "tie: " + ", ".join(winners))
        best["same"] = best["paper"] == best["ours"] and best["ours"] != "–"
        out[metric] = best
    return pd.DataFrame.from_dict(out, orient="index")


def read_differences(bootstrap: pd.DataFrame, metric: str, level: float = 0.9) -> str:
    """One Markdown line per difference row of :func:`mrife.metrics.scene_bootstrap`."""
    lines = []
    for label, row in bootstrap.dropna(subset=["share > 0"]).iterrows():
        if row["low"] > 0 or row["high"] < 0:
            verdict = "larger than the spread that resampling the test scenes gives"
        else:
            verdict = "within the spread that resampling the test scenes gives (the interval holds 0)"
        lines.append(f"- {label}: {metric} {row['value']:+.4f} ({level:.0%} interval {row['low']:+.4f} to "
                     f"{row['high']:+.4f}; ahead in {row['share > 0']:.0%} of the draws): {verdict}.")
    return "\n".join(lines)
