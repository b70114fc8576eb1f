"""The chapters as a reader meets them: one skeleton, prose with the code a reader copies,
no function of their own (the logic lives in the library, with tests), and the book small
enough to browse on the repository host."""

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9]*.ipynb"))
HIDDEN = {"hide-input", "remove-input", "remove-cell"}
MAX_LINES = 12  # of a code cell in view, and of one that draws, hidden or not
MAX_HIDDEN_LINES = 25  # of any other hidden cell: imports, glue (the longest, chapter 5's glue, has 24)
# A cell that lays out or draws a figure: the layout belongs in mrife.plots, with a test.
DRAWS = re.compile(r"\bplt\.(?:subplots?|figure)\(|\.(?:add_subplot|add_gridspec|plot|imshow|contourf?|scatter|barh?|hist"
                   r"|axhline|axvline|add_patch|fill_between|errorbar|pcolormesh)\(")
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


def line_limit(cell: dict) -> int:
    """The most lines a code cell may hold: :data:`MAX_LINES` in view or when it draws
    (a hidden plotting loop is still code the library should hold and test),
    :data:`MAX_HIDDEN_LINES` for other hidden cells."""
    hidden = bool(HIDDEN & set(cell["metadata"].get("tags", [])))
    return MAX_HIDDEN_LINES if hidden and not DRAWS.search(source(cell)) else MAX_LINES


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_defines_no_function_and_keeps_cells_short(path):
    for i, cell in enumerate(cells(path, "code")):
        where = f"{path.name}, code cell {i} (id {cell.get('id')})"
        lines = source(cell).splitlines()
        defined = [line for line in lines if line.lstrip().startswith(("def ", "class ", "lambda:"))]
        assert not defined, f"{where}: {defined[0].strip()!r}: move it into the library"
        limit = line_limit(cell)
        assert len(lines) <= limit, (f"{where}: {len(lines)} lines (at most {limit}"
                                     + (" for a cell that draws: move the figure into mrife.plots, with a test)"
                                        if limit == MAX_LINES and DRAWS.search(source(cell)) else ")"))


def test_a_hidden_plotting_loop_is_held_to_the_short_limit():
    # A check that cannot fail is no check: hiding a figure's loop does not lift the limit.
    loop = "fig, axes = plt.subplots(1, 3)\nfor ax in axes:\n    ax.plot([0, 1])\n" + "pass\n" * 10
    hidden = {"metadata": {"tags": ["hide-input"]}, "source": [loop]}
    assert line_limit(hidden) == MAX_LINES, "a hidden cell that draws should be held to MAX_LINES"
    imports = {"metadata": {"tags": ["hide-input"]}, "source": ["import numpy as np\n" * 20]}
    assert line_limit(imports) == MAX_HIDDEN_LINES, "a hidden cell of imports gets the larger limit"


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


# --- every number a chapter's prose states is glued from a run, or is a stated setting ---

# A decimal or a percentage in prose (an integer is a count, a size or a setting; a
# measured quantity is written with a decimal point or as a share).
PROSE_NUMBER = re.compile(r"(?<![\w.`{-])(\d*\.\d+|\d+(?:\.\d+)?\s?%)(?![\w`}])")
NOT_PROSE = [r"\{glue:\w+\}`[^`]*`", r"```.*?```", r"\$\$.*?\$\$", r"\$[^$\n]*\$", r"`[^`]*`", r"\]\([^)]*\)",
             r"(?:Eqs?\.|Sec\.|Section|Figs?\.|arXiv|CC BY)\s*[\d.,\sIVX-]*\d"]  # glue, code, maths, links, references


def _numbers(text: str, pattern: re.Pattern = PROSE_NUMBER) -> set[float]:
    return {round(float(n.rstrip("% ")) / (100 if "%" in n else 1), 9) for n in pattern.findall(text)}


def stated_settings() -> set[float]:
    """Numbers prose may state without glue, each read from where it is defined: the
    paper's tables and errata (:mod:`mrife.paper`), every setting of the paper's profile
    and of the experiments' overrides, and the rules' thresholds."""
    import mrife.paper
    from mrife.config import load_profile, to_dict
    from mrife.experiments import EXPERIMENTS, overrides_of
    from mrife.claims import NOT_LEARNING, PLATEAU

    paper = json.dumps([getattr(mrife.paper, t) for t in dir(mrife.paper) if t.isupper() and t != "CLAIMS"],
                       default=str)
    settings = [v for section in to_dict(load_profile("paper")).values() if isinstance(section, dict)
                for v in section.values() if isinstance(v, float)]
    overrides = " ".join(o.split("=", 1)[1] for e in EXPERIMENTS for o in overrides_of(e))
    rules = [NOT_LEARNING, PLATEAU, 0.9, 0.1]  # 0.9: the intervals' level; 0.1 / 0.9: the block classes' shares
    return _numbers(paper, re.compile(r"\d*\.\d+")) | _numbers(overrides) | {round(v, 9) for v in settings + rules}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_number_the_prose_states_is_glued_or_a_stated_setting(path):
    allowed, typed = stated_settings(), {}
    for cell in cells(path, "markdown"):
        prose = source(cell)
        for pattern in NOT_PROSE:
            prose = re.sub(pattern, "", prose, flags=re.S)
        typed |= {cell.get("id"): sorted(_numbers(prose) - allowed)} if _numbers(prose) - allowed else {}
    assert not typed, (f"{path.name}: numbers typed in prose (cell id: numbers) {typed}: glue each from the cell "
                       "that computes it (mrife.report.Glue), or state it where it is defined")
