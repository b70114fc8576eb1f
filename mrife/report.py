"""The book's report: what the runs found, in words and in tables a reader can take in
(the lines a chapter prints under its tables and the verdicts its prose states), and
the settings of a profile beside the paper's (:func:`settings_table`, :func:`table_ii`).

Everything else here reads tables that :mod:`mrife.tables` builds from finished runs
(``compare``, ``choice_table``, ``verdicts``) and computes nothing from a checkpoint:
:func:`format_table` (a table for display), :func:`leaders` (who leads each metric),
:func:`read_differences` (what an interval says of a difference), :func:`verdict_table`
and :func:`claim_words` (the paper's claims beside ours, as a table and as words for a
sentence), :func:`verdict_counts` and :func:`count_words` (how the verdicts add up for
each kind of claim), :func:`read_heat` (where Grad-CAM maps are hottest) and
:func:`read_choice` (an open choice and its decision); :class:`Glue` keeps what a
chapter glues into its prose. How the runs trained, epoch by epoch, is read by
:mod:`mrife.training_report`. The rules these words report (thresholds, verdicts,
decisions) are :mod:`mrife.claims`'.
"""

from __future__ import annotations

import math

import pandas as pd

from mrife.claims import NOT_LEARNING, VERDICTS, Decision
from mrife.config import RunConfig, describe
from mrife.paper import TABLE_II



def format_table(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``table`` for display: every float written to ``digits`` decimals, a missing value
    (NaN, or an empty text) as "–", other cells unchanged. In a
    :func:`mrife.tables.compare` table, ours reads "not run" where no seed has run (n 0)."""
    shown = table.map(lambda v: "–" if v == "" or (isinstance(v, float) and math.isnan(v))
                      else f"{v:.{digits}f}" if isinstance(v, float) else v)
    if isinstance(table.columns, pd.MultiIndex) and "n" in table.columns.get_level_values(-1):
        for metric in table.columns.get_level_values(0).unique():
            if (metric, "n") in table.columns and (metric, "ours") in table.columns:
                shown.loc[table[(metric, "n")] == 0, (metric, "ours")] = "not run"
    return shown


def settings_table(cfg: RunConfig) -> pd.DataFrame:
    """Every setting of ``cfg`` beside the paper profile's, indexed by key: columns ``ours
    (<profile>)``, ``paper profile``, ``default from`` ("paper" or "project") and
    ``changed by profile <profile>`` ("yes" where the profile overrides the default)."""
    defaults = {key: value for key, value, _ in describe(RunConfig())}  # the paper profile
    return pd.DataFrame([{"key": key, f"ours ({cfg.profile})": value, "paper profile": defaults[key],
                          "default from": source,
                          f"changed by profile {cfg.profile}": "yes" if value != defaults[key] else ""}
                         for key, value, source in describe(cfg)]).set_index("key")


# The rows of the paper's Table II -> the setting that holds each (None: not a setting,
# mrife.train.fit always builds torch.optim.SGD).
TABLE_II_KEYS = {"workers": "train.workers", "batch_size": "train.batch_size", "optimizer": None,
                 "momentum": "train.momentum", "lr": "train.lr", "weight_decay": "train.weight_decay",
                 "epochs": "train.epochs"}


def table_ii(cfg: RunConfig) -> pd.DataFrame:
    """The paper's Table II beside ``cfg``'s values, a row per entry of :data:`TABLE_II_KEYS`:
    columns ``paper (Table II)``, ``ours (<profile>)``, ``config key``, ``default from``
    and ``changed by profile <profile>`` (as in :func:`settings_table`)."""
    settings = settings_table(cfg).drop(columns="paper profile")
    rows = {}
    for name, key in TABLE_II_KEYS.items():
        ours, source, changed = settings.loc[key] if key else ("SGD", "paper", "")
        rows[name] = dict(zip(["paper (Table II)", settings.columns[0], "config key", *settings.columns[1:]],
                              [TABLE_II[name], ours, key or "(mrife.train.fit)", source, changed]))
    return pd.DataFrame(rows).T


def leaders(table: pd.DataFrame) -> pd.DataFrame:
    """Which row of a :func:`mrife.tables.compare` table is best on each metric, in the
    paper and in ours.

    Every metric here is better when higher; only the ``"paper"`` and ``"ours"`` columns are
    read (ours is the mean over seeds; ``sd`` and ``n`` are ignored). A row whose model
    predicts nothing cannot lead: a row with ``recall`` 0 in a source (the table needs a
    ``recall`` column for this) is treated as predicting nothing -- no true positive, so
    precision 0 too, by :func:`mrife.metrics.metrics_from_counts`' convention -- and left
    out of that source's ranking on every metric (its PA, for one, can be high on a test
    set that is mostly background). Returns a DataFrame indexed by metric with columns
    ``paper``, ``ours`` (a row label; "tie: a, b" when the best value is shared, "–" when
    fewer than two rows take part) and ``same`` (whether they agree).
    """
    metrics = table.columns.get_level_values("metric").unique()
    out = {}
    for metric in metrics:
        best = {}
        for source in ("paper", "ours"):
            recall = table[("recall", source)] if ("recall", source) in table.columns else None
            values = {row: v for row, v in table[(metric, source)].items()
                      if not math.isnan(v) and not (recall is not None and recall[row] == 0)}
            top = max(values.values(), default=None)
            winners = [row for row, v in values.items() if v == top]
            best[source] = ("–" if len(values) < 2 else winners[0] if len(winners) == 1
                            else "tie: " + ", ".join(winners))
        best["same"] = best["paper"] == best["ours"] and best["ours"] != "–"
        out[metric] = best
    return pd.DataFrame.from_dict(out, orient="index")


def read_differences(bootstrap: pd.DataFrame, metric: str, level: float = 0.9,
                     resampled: str = "the test scenes") -> str:
    """One Markdown line per difference row of :func:`mrife.metrics.scene_bootstrap` (or,
    with ``resampled="the seeds and the test scenes"``, of
    :func:`mrife.metrics.hierarchical_bootstrap`). The difference stated is the row's
    ``mean`` where the table has one (over seeds: the difference of the means that
    :func:`mrife.tables.compare` shows), its ``value`` otherwise."""
    lines = []
    for label, row in bootstrap.dropna(subset=["share > 0"]).iterrows():
        value = row["mean"] if "mean" in row else row["value"]
        if row["low"] > 0 or row["high"] < 0:
            verdict = f"larger than the spread that resampling {resampled} gives"
        else:
            verdict = f"within the spread that resampling {resampled} gives (the interval holds 0)"
        lines.append(f"- {label}: {metric} {value:+.4f} ({level:.0%} interval {row['low']:+.4f} to "
                     f"{row['high']:+.4f}; ahead in {row['share > 0']:.0%} of the draws): {verdict}.")
    return "\n".join(lines)


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`mrife.tables.verdicts`' table for reading: per claim what it isolates (what
    its two sides differ in; "–" when the claim does not say), the metric, the paper's
    difference ("ahead (no number)" for an infinite one, as in
    :data:`mrife.paper.DIRECTION_CLAIMS`), ours (the two sides' means, each ± its sd over
    seeds, and their difference), the interval at the table's level, the seeds, and the
    verdict."""
    level = table.attrs.get("level", 0.9)

    def side(mean, sd):
        return "–" if math.isnan(mean) else f"{mean:.4f}" + ("" if math.isnan(sd) else f" ± {sd:.4f}")

    rows = {}
    for claim, row in table.iterrows():
        ran = not math.isnan(row["ours"])
        paper = (f"{row['paper']:+.4f}" if math.isfinite(row["paper"])
                 else ("ahead" if row["paper"] > 0 else "behind") + " (no number)")
        rows[claim] = {"isolates": row.get("isolates") or "–", "metric": row["metric"], "paper": paper,
                       "ours: focus": side(row["focus mean"], row["focus sd"]),
                       "ours: other": side(row["other mean"], row["other sd"]),
                       "ours: difference": f"{row['ours']:+.4f}" if ran else "–",
                       f"{level:.0%} interval": f"{row['low']:+.4f} to {row['high']:+.4f}" if ran else "–",
                       "seeds": row["seeds"], "verdict": row["verdict"]}
    return pd.DataFrame.from_dict(rows, orient="index")


def claim_words(row: pd.Series) -> dict[str, str]:
    """One row of :func:`verdict_table` under short names, for a chapter to glue into its
    opening sentence: ``focus``, ``other`` (each side's mean ± sd), ``difference``,
    ``interval``, ``seeds``, ``paper``, ``verdict`` and ``isolates``."""
    interval = next(key for key in row.index if key.endswith("interval"))
    return {"focus": row["ours: focus"], "other": row["ours: other"], "difference": row["ours: difference"],
            "interval": row[interval], "seeds": row["seeds"], "paper": row["paper"], "verdict": row["verdict"],
            "isolates": row["isolates"]}


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How the verdicts of a :func:`mrife.tables.verdicts` table add up for each kind of
    claim (its ``isolates`` column, in order of first appearance).

    Returns:
        A DataFrame indexed by what the claims isolate with one column per verdict of
        :data:`VERDICTS`, ``no verdict`` (a side not run, or no seed left) and ``claims``
        (their total); counts of claims.
    """
    kind = table["verdict"].where(table["verdict"].isin(VERDICTS), "no verdict")
    counts = pd.crosstab(table["isolates"], kind).reindex(
        index=list(dict.fromkeys(table["isolates"])), columns=[*VERDICTS, "no verdict"], fill_value=0)
    counts["claims"] = counts.sum(axis=1)
    return counts.rename_axis(index="isolates", columns=None)


def count_words(counts: pd.Series) -> str:
    """One row of :func:`verdict_counts` in words, for a sentence: "1 of 9 reproduced,
    8 inconclusive, none reversed" (the claims with no verdict are named only when there
    are some)."""
    words = [f"{counts[v]} of {counts['claims']} {v}" if i == 0 else f"{counts[v] or 'none'} {v}"
             for i, v in enumerate(VERDICTS)]
    if counts["no verdict"]:
        words.append(f"{counts['no verdict']} without a verdict yet")
    return ", ".join(words)


def read_heat(table: pd.DataFrame, expected: dict[str, str] | None = None) -> str:
    """One Markdown line per map of :func:`mrife.cam.heat_by_block_class`: its block classes
    from hottest to coolest with their mean heat, and, for a map that ``expected`` names
    (map -> the class the paper reads it hottest on), whether ours is hottest there too.
    Heat is scaled per map, so the line compares classes within one map only; a class the
    tiles do not hold (NaN) is left out."""
    expected = expected or {}
    lines = []
    for name, heat in table.iterrows():
        ranked = heat.dropna().sort_values(ascending=False, kind="stable")
        if ranked.empty:
            continue
        line = f"- **{name}**: hottest on {ranked.index[0]} blocks ({ranked.iloc[0]:.3f})"
        if len(ranked) > 1:
            line += ", then " + join_and([f"{cls} ({value:.3f})" for cls, value in ranked.iloc[1:].items()])
        if name in expected:
            line += ("; where the paper reads it hottest" if ranked.index[0] == expected[name]
                     else f"; the paper reads it hottest on {expected[name]} blocks")
        lines.append(line + ".")
    return "\n".join(lines)


def read_choice(table: pd.DataFrame, choice: str) -> str:
    """A Markdown line saying what the :func:`mrife.tables.choice_table` of ``choice``
    found: the leader and the runner-up with mean +- sd over seeds, the decision (the
    leader against the default), the leader minus the default seed by seed, and
    every seed of a candidate that never learned (best validation lIoU below
    :data:`NOT_LEARNING`)."""
    ran = table[table["n"] > 0].sort_values("val lIoU", ascending=False, kind="stable")  # ties: listed order
    if ran.empty:
        return f"- **{choice}**: no candidate has a finished run yet; the default `{table.index[0]}` stands."

    def score(name):
        row = ran.loc[name]
        spread = "" if row["n"] < 2 else f" ± {row['sd']:.3f}"
        return f"`{name}` {row['val lIoU']:.3f}{spread} ({row['n']} seed{'s' if row['n'] > 1 else ''})"

    top = ran.index[0]
    line = f"- **{choice}**: best validation lIoU, mean ± sd over seeds: {score(top)}"
    if len(ran) > 1:
        line += f", ahead of {score(ran.index[1])}"
    default = table.index[0]
    if default in ran.index[2:]:
        line += f"; the default {score(default)}"
    decision = Decision(table.loc[top, "decision"])
    line += {Decision.CHOSEN: f": `{top}` is chosen (its lead over the default `{default}` is larger than "
                              "either one's spread over seeds).",
             Decision.WITHIN_NOISE: f": its lead over the default `{default}` is within seed noise, so the "
                                    "default stays.",
             Decision.DEFAULT_LEADS: ": the default leads, so it stays."}.get(
        decision, f": {decision or 'the only candidate run'}, nothing is decided yet.")
    if top != default and not math.isnan(table.loc[top, "vs default"]):
        shared = len(set(table.loc[top, "per seed"]) & set(table.loc[default, "per seed"]))
        spread = "" if shared < 2 else f" ± {table.loc[top, 'vs default sd']:.3f}"
        line += (f" Seed by seed, `{top}` minus `{default}` is {table.loc[top, 'vs default']:+.3f}{spread} "
                 f"({shared} seed{'s' if shared > 1 else ''}; a paired view, not the rule).")
    failed = [f"`{name}` seed {seed} ({value:.3f})" for name, row in ran.iterrows()
              for seed, value in row["per seed"].items() if value < NOT_LEARNING]
    if failed:
        line += f" Runs that never learned to find landslides (best below {NOT_LEARNING}): {', '.join(failed)}."
    not_run = [f"`{name}`" for name in table.index[table["n"] == 0]]
    if not_run:
        line += " Not run yet: " + ", ".join(not_run) + "."
    return line


def read_pairing(table: pd.DataFrame) -> str:
    """A Markdown line on a :func:`mrife.tables.seed_pairing` table: for how many claims
    the two sides' seeds go together on validation (r > 0, with the median r), for how many
    their seed-by-seed difference varies less than independent seeds would, and how many
    of the seed pairs trained both sides on one kind of processor."""
    together, tighter = int((table["r"] > 0).sum()), int((table["paired sd"] < table["independent sd"]).sum())
    return (f"On the validation split the seeds of the two sides go together (r > 0) for **{together}** of the "
            f"{len(table)} claims (median r {table['r'].median():+.2f}); their difference varies less from seed "
            f"to seed than independent seeds would for **{tighter}**. Both sides of a seed were trained on one "
            f"kind of processor in **{int(table['same CPU'].sum())}** of the {int(table['seeds'].sum())} seed "
            "pairs.")


def read_branch(table: pd.DataFrame, part: str = "the enhancement branch") -> str:
    """One Markdown line per model of a :func:`mrife.tables.branch_table`: what ``part``
    adds to its test score, mean ± sd over the seeds that recorded the score without it,
    and each seed's gain; a model whose runs predate that record says so."""
    lines = []
    for label, runs in table.groupby(level="model", sort=False):
        recorded = runs.dropna(subset=["without"])
        if recorded.empty:
            runs_were = f"{len(runs)} runs were" if len(runs) > 1 else "1 run was"
            lines.append(f"- **{label}**: its {runs_were} trained before the score without {part} was recorded.")
            continue
        adds = recorded["adds"]
        spread = f" ± {adds.std():.4f}" if len(adds) > 1 else ""
        seeds = ", ".join(f"seed {seed}: {gain:+.4f}" for (_, seed), gain in adds.items())
        lines.append(f"- **{label}**: {part} adds {adds.mean():+.4f}{spread} over {len(adds)} seed"
                     f"{'s' if len(adds) > 1 else ''} ({seeds}).")
    return "\n".join(lines)


def read_verdict_changes(before: pd.DataFrame, after: pd.DataFrame, change: str) -> str:
    """A Markdown line on how a second reading of the claims (two :func:`mrife.tables.verdicts`
    tables, one row per claim) moves their verdicts: "<change> changes **n** of the m
    verdicts", then each claim that moved, from its first verdict to its second."""
    moved = [f"- {label}: {before.loc[label, 'verdict']} → **{after.loc[label, 'verdict']}**"
             for label in before.index if before.loc[label, "verdict"] != after.loc[label, "verdict"]]
    line = f"{change} changes **{len(moved)}** of the {len(before)} verdicts"
    return line + (":\n\n" + "\n".join(moved) if moved else ".")


def profile_change_words(before: pd.DataFrame, after: pd.DataFrame, sides: pd.DataFrame,
                         baseline: str = "deeplabv3plus") -> dict[str, str]:
    """Which side of each claim moved between two profiles, in words a chapter glues.

    Args:
        before, after: :func:`verdict_table` of the same claims at the earlier profile and
            at the present one (``verdict`` and ``isolates`` columns).
        sides: one row per experiment that is a side of a claim, with columns ``("change",
            "")`` (its mean test lIoU, present minus earlier) and ``(label, "sd")`` for the
            two profiles' labels, in that order (the spread of its test lIoU over seeds).
        baseline: the experiment set against the others (smp's DeepLabv3+: every other
            side is built on our segmentation network).

    Returns:
        ``moved`` ("8 of 13" verdicts), ``baseline-gain``, ``gained-more`` (how many of the
        others gained more than the baseline), ``gains`` (their range, with the
        experiments), ``sd-before``, ``sd-after`` (the median model's sd), ``sd-narrower``
        and ``moved-isolates`` (what the moved claims isolate; "none" when none moved).
    """
    moved = before["verdict"] != after["verdict"]
    change = sides[("change", "")]
    ours = change.drop(baseline)
    sd = sides.xs("sd", axis=1, level=1)  # the two profiles' columns, in order
    sd_before, sd_after = sd.iloc[:, 0], sd.iloc[:, 1]
    isolates = after.loc[moved, "isolates"].value_counts()
    return {
        "moved": f"{int(moved.sum())} of {len(after)}",
        "baseline-gain": f"{change[baseline]:+.3f}",
        "gained-more": f"{int((ours > change[baseline]).sum())} of {len(ours)}",
        "gains": f"{ours.min():+.3f} (`{ours.idxmin()}`) to {ours.max():+.3f} (`{ours.idxmax()}`)",
        "sd-before": f"{sd_before.median():.3f}",
        "sd-after": f"{sd_after.median():.3f}",
        "sd-narrower": f"{int((sd_after < sd_before).sum())} of {len(sides)}",
        "moved-isolates": join_and([f"{n} isolate{'s' if n == 1 else ''} {what}" for what, n in isolates.items()])
        or "none",
    }


def join_and(items: list[str]) -> str:
    """Items as a sentence lists them: [] -> "", ["1"] -> "1", ["1", "2"] -> "1 and 2",
    ["1", "2", "3"] -> "1, 2 and 3"."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


class Glue:
    """myst-nb's ``glue`` that keeps what it glued, to show it again as a list.

    The repository host's notebook view renders no glue role, so a chapter whose prose
    states glued numbers ends its glue cell with :meth:`listing`: the same values, never
    typed, readable where the notebook is read unrendered (the cell is tagged
    ``remove-cell``: in the rendered book the prose holds them)::

        glue = Glue()
        glue("t3-focus", "0.3090 ± 0.0727", display=False)
        glue.listing()
    """

    def __init__(self):
        self.values: dict[str, str] = {}

    def __call__(self, key: str, value, display: bool = False) -> None:
        from myst_nb import glue  # the book's renderer: installed with the book, not needed by the library

        glue(key, value, display=display)
        self.values[key] = str(value)

    def listing(self) -> Listing:
        """Key -> the text glued under it, in the order glued; shown as a Markdown list."""
        return Listing(self.values)


class Listing(dict):
    """A mapping that a notebook shows as a Markdown list, one ``key: value`` a line."""

    def _repr_markdown_(self) -> str:
        return "\n".join(f"- `{key}`: {value}" for key, value in self.items())
