"""Execute chapters in place, so that the repository holds their outputs.

The committed outputs are what the repository host shows a reader who runs nothing, and
the reference that ``make test`` checks every cell against (``pytest --nbval``: a change
in the library or in ``results/`` that changes what a chapter shows fails until the
chapters are executed again). Run it after committing new runs:

    MRIFE_PROFILE=cpu python book/execute.py book/*.ipynb    # or: make outputs

With ``--check`` the chapters are executed and nothing is written: ``make test`` runs
every chapter so at the ``smoke`` profile, where no committed output exists to compare
with, to show that each one runs to its end (a failing cell stops with its traceback).

Each notebook runs in a fresh kernel from its own folder, as Jupyter Book runs it; the
execution timestamps that nbclient writes into each cell's metadata are dropped, so a
notebook's diff shows only what changed in what it shows.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TIMEOUT_S = 1800  # a cell; as _config.yml gives Jupyter Book
_REDRAWN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)  # a line's text before its last carriage return


def collapse_streams(outputs: list) -> list:
    """Between two rich outputs (a table, a figure), one output per stream name, where it
    first wrote, with each line as its last redraw left it; the order of the rich outputs
    and of what is printed around them is kept."""
    merged, streams = [], {}
    for out in outputs:
        if out.output_type != "stream":
            merged.append(out)
            streams = {}
        elif out.name in streams:
            streams[out.name].text += out.text
        else:
            streams[out.name] = out
            merged.append(out)
    for out in merged:
        if out.output_type == "stream":
            out.text = _REDRAWN.sub("", out.text)
    return merged


def execute(path: Path, write: bool = True) -> float:
    """Execute the notebook at ``path``, in place when ``write``; returns the seconds it took."""
    tic = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    if write:
        for cell in nb.cells:
            cell.metadata.pop("execution", None)
            if cell.cell_type == "code":
                cell.outputs = collapse_streams(cell.outputs)
        nbformat.write(nb, path)
    return time.perf_counter() - tic


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    for name in [arg for arg in sys.argv[1:] if arg != "--check"]:
        print(f"{name}: {execute(Path(name), write=not check):.0f} s" + (" (checked, not written)" if check else ""),
              flush=True)
