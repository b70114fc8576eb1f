"""Keeping committed runs under the name their configuration has today.

A run directory is named by its config's hash (:func:`mrife.runs.run_dir_for`), so a field
added to the configuration renames every run: :func:`rename_runs` moves them, once, when
such a field lands (``python -c "from mrife.migrate import rename_runs; print(rename_runs('results'))"``).
"""

from __future__ import annotations

import json
from pathlib import Path

from mrife.config import load_yaml, save_yaml
from mrife.runs import run_dir_for, write_json


def rename_runs(root: str | Path) -> dict[str, str]:
    """Give every run directory under ``root`` the name its config has today.

    A field added to the configuration changes every run's hash. An old run's
    ``config.yaml`` lacks the field, so it is read with the field's default -- the setting
    the old code had, which is how a field must be added -- and the run is renamed to
    that config's directory, its ``config.yaml`` rewritten with every field, and each
    ``index.json`` under ``root`` updated. Returns ``{old name: new name}``.

    Raises:
        FileExistsError: when a run's new name is already taken (two runs would merge).
    """
    root = Path(root)
    renamed = {}
    for config in sorted(root.glob("**/config.yaml")):
        run = config.parent
        cfg = load_yaml(config)
        target = run_dir_for(cfg, run.parent)
        if target == run:
            continue
        if target.exists():
            raise FileExistsError(f"cannot rename {run} to {target.name}: {target} exists")
        run.rename(target)
        save_yaml(cfg, target / "config.yaml")
        renamed[run.name] = target.name
    for index in root.glob("**/index.json"):
        entries = json.loads(index.read_text())
        write_json(index, {name: {seed: renamed.get(run, run) for seed, run in by_seed.items()}
                           for name, by_seed in entries.items()})
    return renamed
