"""Drop the stored outputs of every chapter cell that nbval does not check.

The book executes its chapters at build time, so stored outputs serve one purpose: the
reference that ``pytest --nbval-lax`` compares cells marked ``# NBVAL_CHECK_OUTPUT``
against. Keeping only those keeps the notebooks small and their diffs readable.

    python book/strip_outputs.py book/*.ipynb
"""

import sys

import nbformat


def strip(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.lstrip().startswith("# NBVAL_CHECK_OUTPUT"):
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        strip(path)
