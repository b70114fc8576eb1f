"""The kernel benchmark's results drawn against the problem size (``python -m
mrife.kernels.bench``, whose JSON holds one row per backend and size)."""

from __future__ import annotations

from matplotlib import pyplot as plt


def kernel_scaling(rows: list[dict], title: str | None = None):
    """Peak extra memory (MiB) and forward + backward time (s) against ``N = M``, log-log,
    a line per backend: on such axes a cost growing as ``N^2`` has slope 2.

    ``rows`` are the benchmark's rows: ``backend``, ``N``, ``time_s`` and
    ``peak_extra_bytes`` each. Returns the figure."""
    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(9, 3.5))
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["N"])
        sizes = [r["N"] for r in mine]
        # max(.., 1 byte): a path that allocates nothing beyond its inputs still shows on a log axis
        ax_mem.loglog(sizes, [max(r["peak_extra_bytes"], 1) / 2**20 for r in mine], "o-", label=backend)
        ax_time.loglog(sizes, [r["time_s"] for r in mine], "o-", label=backend)
    ax_mem.set(xlabel="N = M", ylabel="peak extra memory (MiB)", title="memory")
    ax_time.set(xlabel="N = M", ylabel="forward + backward (s)", title="time")
    ax_mem.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
