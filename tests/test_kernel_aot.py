"""Ahead-of-time compile check of the Triton kernels for sm_80 and sm_90a (no GPU needed).

Runs ``python -m mrife.kernels.aot`` in a fresh process without ``TRITON_INTERPRET`` (the
interpreter tests of ``test_kernel.py`` build the kernels for the CPU in this process).
Every kernel is compiled with every config its autotuner may pick, in fp32, bf16 and
fp16, for both targets: about 70 compiles, a minute or two on two cores, hence ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mrife.kernels.aot import ARCHS, DTYPES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compiles(tmp_path_factory):
    out = tmp_path_factory.mktemp("aot") / "aot.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "mrife.kernels.aot", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert out.exists(), f"mrife.kernels.aot wrote no results (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text()), proc


def test_every_kernel_config_compiles_for_each_target(compiles):
    from mrife.kernels.masked_supcon_triton import BWD_CONFIGS, FWD_CONFIGS

    rows, _ = compiles
    expected = {"_fwd_kernel": len(FWD_CONFIGS), "_bwd_pos_kernel": len(BWD_CONFIGS),
                "_bwd_neg_kernel": len(BWD_CONFIGS)}
    for kernel, n_configs in expected.items():
        for target in ("sm_80", "sm_90a"):
            got = [r for r in rows if r["kernel"] == kernel and r["arch"] == target]
            assert len(got) == n_configs * len(DTYPES), \
                f"{kernel} {target}: expected {n_configs} configs x {DTYPES}, got {len(got)} compiles"
    assert len(ARCHS) == 2 and all(r["ptx_bytes"] > 0 and r["cubin_bytes"] > 0 for r in rows), \
        "every compile should give PTX and a cubin"


def test_no_config_spills(compiles):
    rows, proc = compiles
    spilling = [f"{r['kernel']} {r['config']} {r['arch']} {r['dtype']}: {r['spill_stores']}/{r['spill_loads']} "
                f"STL/LDL, {r['local']} B local" for r in rows if r["spill_stores"] or r["spill_loads"] or r["local"]]
    assert not spilling, "autotuner configs must compile without register spills:\n" + "\n".join(spilling)
    assert proc.returncode == 0, f"python -m mrife.kernels.aot exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert all(0 < r["registers"] <= 255 for r in rows), "register counts should be read from every cubin"
