"""Benchmark of ``masked_supcon`` forward + backward: ``python -m mrife.kernels.bench``.

Inputs are what the SFCE term sees in training: two ``[B, 256, 128, 128]`` maps (student
and teacher), ``N`` class-1 and ``M`` class-0 positions, half of each from either map.

- On CUDA: the Triton path against the eager reference and ``torch.compile`` of it,
  timed with CUDA events (median of ``--repeats`` runs after a warm-up), with the peak
  of ``torch.cuda.max_memory_allocated`` above what the inputs hold.
- On CPU: the eager reference (``backend="torch"``) against the chunked path
  (``backend="torch-chunked"``). Each (backend, size) runs in a fresh subprocess; the
  memory figure is the process's peak resident set size (``VmHWM``, reset through
  ``/proc/self/clear_refs`` after a warm-up run) minus its resident size just before
  the timed runs: every byte the forward and backward touch (torch's buffers, autograd's
  saved tensors, the allocator's slack), as the operating system counts it. Time is the
  wall-clock median of the repeats.

``--json`` and ``--markdown`` write the results (the book's kernel chapter reads the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

SIZES = (1024, 4096, 16384)
CHANNELS = 256
MAP = (2, 128, 128)  # B, h, w: 32768 positions, room for N + M = 32768 distinct ones


def make_inputs(n: int, m: int, channels: int = CHANNELS, device: str = "cpu", dtype=torch.float32, seed: int = 0,
                channels_last: bool = False):
    """Student and teacher maps and the masked positions: ``n`` class-1 and ``m`` class-0
    rows, the first half of each class from the student map, the rest from the teacher.
    ``channels_last`` lays both maps out with each position's channels side by side."""
    B, h, w = MAP
    if n + m > B * h * w:
        raise ValueError(f"bench: N + M = {n + m} exceeds the {B * h * w} positions of a {MAP} map")
    g = torch.Generator().manual_seed(seed)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    feat_s = torch.randn(B, channels, h, w, generator=g).to(device=device, dtype=dtype, memory_format=layout)
    feat_s.requires_grad_()
    feat_t = torch.randn(B, channels, h, w, generator=g).to(device=device, dtype=dtype, memory_format=layout)
    pos = torch.randperm(B * h * w, generator=g)[: n + m]
    lab = torch.cat([torch.ones(n, dtype=torch.int64), torch.zeros(m, dtype=torch.int64)])
    in_s = torch.zeros(n + m, dtype=torch.bool)
    in_s[: n // 2] = True
    in_s[n : n + m // 2] = True
    to = dict(device=device)
    return feat_s, pos[in_s].to(**to), lab[in_s].to(**to), feat_t, pos[~in_s].to(**to), lab[~in_s].to(**to)


def step(backend: str, inputs, fn=None) -> None:
    """One forward + backward; ``fn`` replaces ``masked_supcon`` (torch.compile)."""
    from mrife.kernels import masked_supcon

    feat_s = inputs[0]
    feat_s.grad = None
    loss = (fn or masked_supcon)(*inputs, temperature=0.07, backend=backend)
    loss.backward()


# ----------------------------------------------------------------------------------------
# CPU: one subprocess per case
# ----------------------------------------------------------------------------------------


def _proc_status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+) kB", text).group(1)) * 1024 for k in ("VmRSS", "VmHWM")}


def cpu_case(backend: str, n: int, repeats: int) -> dict:
    """Run inside a fresh process: warm-up, reset the peak RSS, time ``repeats`` steps."""
    inputs = make_inputs(n, n)
    step(backend, inputs)  # warm-up: first-call allocations, thread pools
    inputs[0].grad = None
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _proc_status()["VmRSS"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(backend, inputs)
        times.append(time.perf_counter() - t0)
    peak = _proc_status()["VmHWM"]
    return {"backend": backend, "N": n, "M": n, "C": CHANNELS, "repeats": repeats,
            "time_s": statistics.median(times), "times_s": times, "peak_extra_bytes": peak - base}


def run_cpu(sizes, repeats: int) -> list[dict]:
    rows = []
    for n in sizes:
        for backend in ("torch", "torch-chunked"):
            code = ("import json; from mrife.kernels.bench import cpu_case; "
                    f"print(json.dumps(cpu_case({backend!r}, {n}, {repeats})))")
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {backend:>14} N=M={n}: {rows[-1]['time_s']:.3f} s, "
                  f"{rows[-1]['peak_extra_bytes'] / 2**20:.0f} MiB", file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------------------
# CUDA
# ----------------------------------------------------------------------------------------


def run_cuda(sizes, repeats: int, channels_last: bool = False) -> list[dict]:
    from mrife.kernels import masked_supcon

    compiled = torch.compile(masked_supcon)
    rows = []
    for n in sizes:
        for label, backend, fn in (("triton", "triton", None), ("torch", "torch", None),
                                   ("torch.compile(torch)", "torch", compiled)):
            inputs = make_inputs(n, n, device="cuda", channels_last=channels_last)
            step(backend, inputs, fn)  # warm-up, compiles
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                step(backend, inputs, fn)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            rows.append({"backend": label, "N": n, "M": n, "C": CHANNELS, "repeats": repeats,
                         "time_s": statistics.median(times), "times_s": times,
                         "peak_extra_bytes": torch.cuda.max_memory_allocated() - base})
            print(f"  {label:>20} N=M={n}: {rows[-1]['time_s'] * 1e3:.2f} ms", file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def relative(rows: list[dict], reference: str = "torch") -> list[dict]:
    """The rows with ``time_ratio`` and ``memory_ratio`` added: time and peak extra memory
    over those of the ``reference`` backend at the same ``N``."""
    ref = {r["N"]: r for r in rows if r["backend"] == reference}
    return [{**r, "time_ratio": r["time_s"] / ref[r["N"]]["time_s"],
             "memory_ratio": r["peak_extra_bytes"] / max(ref[r["N"]]["peak_extra_bytes"], 1)} for r in rows]


def markdown(rows: list[dict], reference: str = "torch") -> str:
    """One line per case, with time and memory relative to the eager reference."""
    lines = ["| N = M | C | backend | time, median (s) | peak extra memory (MiB) | time / eager | memory / eager |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in relative(rows, reference):
        lines.append(f"| {r['N']} | {r['C']} | {r['backend']} | {r['time_s']:.4g} | "
                     f"{r['peak_extra_bytes'] / 2**20:.1f} | {r['time_ratio']:.2f} | {r['memory_ratio']:.3f} |")
    return "\n".join(lines)


def environment(device: str) -> dict:
    env = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
           "machine": platform.machine(), "threads": torch.get_num_threads(),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if device == "cuda":
        import triton  # the kernel's compiler: its version changes the timings as much as torch's

        env["gpu"], env["triton"] = torch.cuda.get_device_name(), triton.__version__
    else:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        env["cpu"] = cpu.group(1) if cpu else platform.processor()
        env["cores"] = os.cpu_count()
    return env


MEASURES = {
    "cpu": "wall-clock median of forward+backward; memory: peak resident set size (VmHWM) of a fresh "
           "process minus its resident size before the timed runs",
    "cuda": "CUDA-event median of forward+backward; memory: torch.cuda.max_memory_allocated minus the "
            "bytes allocated before the timed runs",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="N = M values")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true", help="maps in channels-last layout (CUDA only)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    load_before = os.getloadavg()[0]  # other processes on the machine slow every case alike
    if args.channels_last and device != "cuda":
        parser.error("--channels-last is measured on CUDA only")
    if device == "cuda":
        rows = run_cuda(args.sizes, args.repeats, args.channels_last)
    else:
        rows = run_cpu(args.sizes, args.repeats)
    env = {**environment(device), "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
           "layout": "channels-last" if args.channels_last else "contiguous"}
    table = markdown(rows)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"environment": env, "measures": MEASURES[device], "rows": rows}, indent=1))
    if args.markdown:
        header = (f"Benchmark of `masked_supcon` forward + backward on {device.upper()} "
                  f"({env.get('cpu', env.get('gpu'))}, {env['layout']} maps, {env['threads']} threads, "
                  f"torch {env['torch']}, "
                  f"{env['date']}, 1-minute load average {env['load_average_1min'][0]} before and "
                  f"{env['load_average_1min'][1]} after), `python -m mrife.kernels.bench`.\n"
                  f"Measures: {MEASURES[device]}.\n\n")
        args.markdown.write_text(header + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
