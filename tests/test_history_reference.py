"""Changes of structure leave results alone: one smoke epoch of each model gives the
history and test metrics recorded in ``tests/data/smoke_histories.json``.

The file was written by the code before the training contract (issue 9) and is
rewritten only by a change that is meant to alter what training computes, which then
says so in its commit message::

    python tests/test_history_reference.py --write
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

import mrife

MODELS = ("mrife", "segbranch", "deeplabv3plus", "icssn")
REFERENCE = Path(__file__).parent / "data" / "smoke_histories.json"
TOLERANCE = 1e-6  # absolute, on every loss term and metric


def smoke_epoch(name: str, root: Path) -> dict:
    """``{"history": [...], "test": {...}}`` of one smoke epoch of model ``name`` (seconds left out)."""
    run = mrife.fit(mrife.load_profile("smoke", [f"model.name={name}", "train.epochs=1"]), root, progress=False)
    history = json.loads((run / "history.json").read_text())
    return {"history": [{k: v for k, v in record.items() if k != "seconds"} for record in history],
            "test": json.loads((run / "test_metrics.json").read_text())}


@pytest.mark.parametrize("name", MODELS)
def test_one_smoke_epoch_matches_the_recorded_history(name, tmp_path):
    expected = json.loads(REFERENCE.read_text())[name]
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
    with tempfile.TemporaryDirectory() as tmp:
        reference = {name: smoke_epoch(name, Path(tmp)) for name in MODELS}
    REFERENCE.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {REFERENCE}")
