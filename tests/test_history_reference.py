"""Changes of structure leave results alone: one smoke epoch of each model gives the
history and test metrics recorded in ``tests/data/smoke_histories.json``.

The record is kept per kind of CPU: torch's instruction set
(``torch.backends.cpu.get_cpu_capability()``) and the CPU's vendor. The same code on
another kind rounds differently, and MRIFE's summed contrastive term turns that rounding
into a different epoch: its loss differs by 7 % after one smoke epoch between AVX2 and
AVX512, and by 1.3 % between an AVX512 AMD EPYC and an AVX512 Intel Xeon (MKL and oneDNN
take other code paths on the two vendors at one instruction set). ``AVX2 AuthenticAMD``
was recorded on this project's AVX2 machines; ``AVX512 GenuineIntel`` on the first AVX512
machine, by code whose run on AVX2 had matched (CI of 3e5b27b); ``AVX512 AuthenticAMD`` on
the first AVX512 AMD EPYC (Zen 4), by code whose runs on the other two kinds had matched
(CI of 225136b); ``AVX2 AuthenticAMD, forced on an AVX512 CPU`` there too, with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: forced, MRIFE and ICSSN round like
neither kind (``mrife.compute.cpu_kind``). On a CPU with no record the test is skipped with the command that records
one. A record is rewritten only by a change that is meant to alter what training
computes, which then says so in its commit message::

    python tests/test_history_reference.py --write   # this CPU's record; the others are kept
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

import mrife
from mrife.compute import cpu_kind

MODELS = ("mrife", "segbranch", "deeplabv3plus", "icssn")
REFERENCE = Path(__file__).parent / "data" / "smoke_histories.json"
TOLERANCE = 1e-6  # absolute, on every loss term and metric
CPU_KIND = cpu_kind()  # "AVX512 GenuineIntel", ...
# Every record was made with two threads: a summed loss rounds by how the cores split it
# (MRIFE and ICSSN differ beyond TOLERANCE on one thread), so the test uses two on any machine.
THREADS = 2


def smoke_epoch(name: str, root: Path) -> dict:
    """``{"history": [...], "test": {...}}`` of one smoke epoch of model ``name`` (seconds left out)."""
    overrides = [f"model.name={name}", "train.epochs=1", f"train.threads={THREADS}"]
    run = mrife.fit(mrife.load_profile("smoke", overrides), root, progress=False)
    history = json.loads((run / "history.json").read_text())
    return {"history": [{k: v for k, v in record.items() if k != "seconds"} for record in history],
            "test": json.loads((run / "test_metrics.json").read_text())}


@pytest.mark.parametrize("name", MODELS)
def test_one_smoke_epoch_matches_the_recorded_history(name, tmp_path):
    records = json.loads(REFERENCE.read_text())
    if CPU_KIND not in records:
        pytest.skip(f"no smoke history recorded for this kind of CPU, {CPU_KIND} (recorded: {sorted(records)}); "
                    "record one with `python tests/test_history_reference.py --write` on the code that matches "
                    "the others")
    expected = records[CPU_KIND][name]
    got = smoke_epoch(name, tmp_path)
    assert len(got["history"]) == len(expected["history"]), f"{name}: expected one epoch"
    for ours, ref in zip([*got["history"], got["test"]], [*expected["history"], expected["test"]]):
        # A key added since the record (the validation AP, MRIFE's test without its
        # enhancement branch) is new output, not a change of what training computes.
        assert set(ref) <= set(ours), f"{name}: recorded keys {sorted(ref)}, got {sorted(ours)}"
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value, rel=0, abs=TOLERANCE), (
                f"{name}: {key} was {value} in the recorded run, now {ours[key]}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    records = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        records[CPU_KIND] = {name: smoke_epoch(name, Path(tmp)) for name in MODELS}
    REFERENCE.write_text(json.dumps(records, indent=1) + "\n")
    print(f"wrote the {CPU_KIND} record of {REFERENCE}")
