"""The chapters as a reader meets them: one skeleton, prose with the code a reader copies,
no function of their own (the logic lives in the library, with tests), and the book small
enough to browse on the repository host."""

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9]*.ipynb"))
HIDDEN = {"hide-input", "remove-input", "remove-cell"}
MAX_LINES = 12  # of a code cell in view
SKELETON = ("## Overview", "## Prerequisites and time to run", "## Summary")


def cells(path: Path, kind: str) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def source(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_skeleton(path):
    headings = [line for c in cells(path, "markdown") for line in source(c).splitlines() if line.startswith("#")]
    assert headings[0].startswith("# "), f"{path.name} must open with its title"
    missing = [h for h in SKELETON if h not in headings]
    assert not missing, f"{path.name} lacks {missing}"
    tagged = [c for c in cells(path, "code") if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs one cell tagged `parameters` (got {len(tagged)})"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_defines_no_function_and_shows_short_cells(path):
    for i, cell in enumerate(cells(path, "code")):
        lines = source(cell).splitlines()
        defined = [line for line in lines if line.lstrip().startswith(("def ", "class ", "lambda:"))]
        assert not defined, f"{path.name}, code cell {i}: {defined[0].strip()!r}: move it into the library"
        if not HIDDEN & set(cell["metadata"].get("tags", [])):
            assert len(lines) <= MAX_LINES, f"{path.name}, code cell {i}: {len(lines)} lines in view (>{MAX_LINES})"


def test_the_book_is_small_enough_to_browse():
    size = sum(p.stat().st_size for p in BOOK.rglob("*") if p.is_file())
    assert size < 15e6, f"book/ holds {size / 1e6:.1f} MB (limit 15 MB): shrink the figures"


def test_stored_progress_bars_keep_their_last_redraw_and_the_order_of_outputs():
    import importlib.util

    import nbformat

    spec = importlib.util.spec_from_file_location("execute", BOOK / "execute.py")
    execute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute)
    stream = lambda name, text: nbformat.v4.new_output("stream", name=name, text=text)  # noqa: E731
    table = nbformat.v4.new_output("display_data", data={"text/plain": "table"})
    outputs = [stream("stderr", "\rbar 1/3"), stream("stdout", "a\n"), stream("stderr", "\rbar 2/3\rbar 3/3\n"),
               table, stream("stdout", "b\n")]
    collapsed = execute.collapse_streams(outputs)
    assert [(o.get("name"), o.get("text")) for o in collapsed] == \
        [("stderr", "bar 3/3\n"), ("stdout", "a\n"), (None, None), ("stdout", "b\n")]
    assert collapsed[2] is table, "a rich output stays between what was printed before and after it"
