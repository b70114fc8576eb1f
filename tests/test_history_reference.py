"""Changes of structure leave results alone: one smoke epoch of each model gives the
history and test metrics recorded in ``tests/data/smoke_histories.json``.

The record is kept per CPU instruction set (``torch.backends.cpu.get_cpu_capability()``):
the same code on another one rounds differently, and MRIFE's summed contrastive term
turns that rounding into a different epoch (its loss differs by 7 % after one smoke
epoch between AVX2 and AVX512). ``AVX2`` was recorded on this project's AVX2 machines;
``AVX512`` was added on the first AVX512 machine, by code whose run on AVX2 had matched
``AVX2`` (CI of 3e5b27b) and that has not changed training since. On a CPU with no record the test is
skipped with the command that records one. A record is rewritten only by a change that
is meant to alter what training computes, which then says so in its commit message::

    python tests/test_history_reference.py --write   # this CPU's record; the others are kept
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import mrife

MODELS = ("mrife", "segbranch", "deeplabv3plus", "icssn")
REFERENCE = Path(__file__).parent / "data" / "smoke_histories.json"
TOLERANCE = 1e-6  # absolute, on every loss term and metric
CAPABILITY = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", ...


def smoke_epoch(name: str, root: Path) -> dict:
    """``{"history": [...], "test": {...}}`` of one smoke epoch of model ``name`` (seconds left out)."""
    run = mrife.fit(mrife.load_profile("smoke", [f"model.name={name}", "train.epochs=1"]), root, progress=False)
    history = json.loads((run / "history.json").read_text())
    return {"history": [{k: v for k, v in record.items() if k != "seconds"} for record in history],
            "test": json.loads((run / "test_metrics.json").read_text())}


@pytest.mark.parametrize("name", MODELS)
def test_one_smoke_epoch_matches_the_recorded_history(name, tmp_path):
    records = json.loads(REFERENCE.read_text())
    if CAPABILITY not in records:
        pytest.skip(f"no smoke history recorded for CPU capability {CAPABILITY} (recorded: {sorted(records)}); "
                    "record one with `python tests/test_history_reference.py --write` on the code that matches "
                    "the others")
    expected = records[CAPABILITY][name]
    got = smoke_epoch(name, tmp_path)
    assert len(got["history"]) == len(expected["history"]), f"{name}: expected one epoch"
    for ours, ref in zip([*got["history"], got["test"]], [*expected["history"], expected["test"]]):
        assert sorted(ours) == sorted(ref), f"{name}: recorded keys {sorted(ref)}, got {sorted(ours)}"
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value, rel=0, abs=TOLERANCE), (
                f"{name}: {key} was {value} in the recorded run, now {ours[key]}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    records = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        records[CAPABILITY] = {name: smoke_epoch(name, Path(tmp)) for name in MODELS}
    REFERENCE.write_text(json.dumps(records, indent=1) + "\n")
    print(f"wrote the {CAPABILITY} record of {REFERENCE}")
