"""Ahead-of-time compile check of the Triton kernels for real NVIDIA targets, no GPU needed.

Every kernel of ``masked_supcon_triton`` is compiled with every configuration its
autotuner may pick, for sm_80 (A100) and sm_90a (H100), through
``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))``: Triton lowers to
PTX and runs the ``ptxas`` it ships, so a cubin comes out on a CPU-only machine (the
``triton.tools.compile`` CLI asks the driver for the current GPU and cannot). Registers
and local memory are read from the cubin with the ``cuobjdump`` shipped inside the triton
package; a spill is a local-memory store/load (``STL``/``LDL``) in the SASS.

Run ``python -m mrife.kernels.aot`` (without ``TRITON_INTERPRET``) for a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ARCHS = (80, 90)  # GPUTarget arch 90 compiles for sm_90a (Triton adds the suffix from 90 on)
DTYPES = ("fp32", "bf16", "fp16")  # the autotuner keys on the dtype: each gets its own pick
POINTER_TYPES = {"S": "*{dtype}", "T": "*{dtype}", "P_IDX": "*i64", "Q_IDX": "*i64", "LSE": "*fp32",
                 "WSUM": "*fp32", "LOSS_ROW": "*fp32", "GRAD": "*fp32", "DLOSS": "*fp32"}
FLOAT_ARGS = ("inv_tau", "inv_n")


@dataclass(frozen=True)
class Compiled:
    """What one (kernel, config, arch, dtype) compile produced."""

    kernel: str
    config: str
    arch: str
    dtype: str
    ptx_bytes: int
    cubin_bytes: int
    registers: int
    stack: int
    local: int
    spill_stores: int
    spill_loads: int
    shared: int

    @property
    def spills(self) -> int:
        return self.spill_stores + self.spill_loads


def signature(kernel, config, dtype: str) -> tuple[dict[str, str], dict[str, object]]:
    """Triton's ``signature`` (argument name -> type) and ``constexprs`` for one config:
    feature maps of ``dtype``, int64 positions, fp32 statistics, i32 sizes and strides."""
    constexprs = {**config.kwargs, "DOT_PRECISION": "ieee"}
    sig = {}
    for name in kernel.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in POINTER_TYPES:
            sig[name] = POINTER_TYPES[name].format(dtype=dtype)
        elif name in FLOAT_ARGS:
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
    return sig, constexprs


def compile_one(name: str, kernel, config, arch: int, dtype: str, workdir: Path) -> Compiled:
    """Compile one kernel config for ``sm_{arch}`` and read its resources from the cubin."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig, constexprs = signature(kernel, config, dtype)
    # Pointers 16-byte aligned, as the JIT specializes them for torch's allocations.
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(kernel.arg_names) if sig[n].startswith("*")}
    src = ASTSource(kernel, signature=sig, constexprs=constexprs, attrs=attrs)
    options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
    out = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    ptx, cubin = out.asm["ptx"], out.asm["cubin"]
    if ".entry" not in ptx or not cubin:
        raise RuntimeError(f"{name} {config} sm_{arch}: compiling gave no PTX entry or no cubin")
    path = workdir / f"{name}_{arch}.cubin"
    path.write_bytes(cubin)
    res, sass = _cuobjdump(path)
    target = re.search(r"^\.target (\S+)", ptx, re.M).group(1)
    return Compiled(
        kernel=name, config=_describe(config), arch=target, dtype=dtype, ptx_bytes=len(ptx),
        cubin_bytes=len(cubin), registers=res["REG"], stack=res["STACK"], local=res["LOCAL"],
        spill_stores=len(re.findall(r"\bSTL\b", sass)), spill_loads=len(re.findall(r"\bLDL\b", sass)),
        shared=out.metadata.shared,
    )


def _cuobjdump(path: Path) -> tuple[dict[str, int], str]:
    """``-res-usage`` numbers (REG, STACK, LOCAL, ...) and the SASS of a one-kernel cubin."""
    from triton import knobs

    tool = knobs.nvidia.cuobjdump.path
    usage = subprocess.run([tool, "-res-usage", str(path)], check=True, capture_output=True, text=True).stdout
    res = {k: int(v) for k, v in re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", usage)}
    if "REG" not in res:
        raise RuntimeError(f"cuobjdump -res-usage {path} printed no REG count:\n{usage}")
    sass = subprocess.run([tool, "-sass", str(path)], check=True, capture_output=True, text=True).stdout
    return res, sass


def _describe(config) -> str:
    blocks = " ".join(f"{k.removeprefix('BLOCK_')}={v}" for k, v in config.kwargs.items())
    return f"{blocks} w={config.num_warps} s={config.num_stages}"


def compile_all(dtypes=DTYPES, archs=ARCHS, workers: int | None = None) -> list[Compiled]:
    """Every kernel x autotuner config x arch x dtype, compiled in ``workers`` processes."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("mrife.kernels.aot compiles for GPUs: run it without TRITON_INTERPRET=1")
    from .masked_supcon_triton import KERNELS

    jobs = [(name, i, arch, dtype) for name, (_, configs) in KERNELS.items()
            for i in range(len(configs)) for arch in archs for dtype in dtypes]
    # ptxas is single-threaded and a compile takes seconds: one process per core.
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return list(pool.map(_compile_job, jobs))


def _compile_job(job) -> Compiled:
    from .masked_supcon_triton import KERNELS

    name, i, arch, dtype = job
    kernel, configs = KERNELS[name]
    with tempfile.TemporaryDirectory() as tmp:
        return compile_one(name, kernel, configs[i], arch, dtype, Path(tmp))


def markdown(rows: list[Compiled]) -> str:
    """A markdown table, one line per compile."""
    lines = ["| kernel | config (blocks, warps, stages) | target | dtype | registers | spill st/ld (STL/LDL) "
             "| stack B | local B | shared B |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| `{r.kernel}` | {r.config} | {r.arch} | {r.dtype} | {r.registers} | "
                     f"{r.spill_stores}/{r.spill_loads} | {r.stack} | {r.local} | {r.shared} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AOT compile check of mrife's Triton kernels (no GPU needed)")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--json", type=Path, help="also write one record per compile here")
    args = parser.parse_args(argv)
    rows = compile_all(dtypes=tuple(args.dtypes))
    print(markdown(rows))
    spilling = [r for r in rows if r.spills or r.local]
    print(f"\n{len(rows)} compiles, {len(spilling)} with spills or local memory.")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 1 if spilling else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
