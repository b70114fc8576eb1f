"""How ``make test`` checks the chapters' outputs with nbval: book/sanitize.cfg makes a
chapter's output read the same wherever the checkout, the data mirror and the temporary
folders are, and book/conftest.py compares the cells tagged ``approx-output`` to a stated
tolerance."""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbCell, get_sanitize_patterns

BOOK = Path(__file__).resolve().parents[1] / "book"
CONFIG = BOOK / "sanitize.cfg"


def sanitize(text: str) -> str:
    """``text`` after every rule of the config, in the file's order, as nbval's
    ``IPyNbCell.sanitize`` runs them."""


    for regex, replace in get_sanitize_patterns(CONFIG.read_text()):
        text = re.sub(regex, replace, text)
    return text


def chapter_output(checkout: str, shared: str, tmp: str) -> str:
    """What a chapter prints of the three kinds of path: the results root in the checkout,
    the data mirror beside it, and a temporary folder."""
    return (f"results root: {checkout}/results\n"
            f"FolderDataset('{shared}/data/sichuan-landslide', 36 scenes)\n"
            f"ran {checkout}/.venv/bin/python in {tmp}/mrife-own-data/runs/mrife-1c34947568\n")


@pytest.mark.parametrize("checkout, shared, tmp", [
    ("/tmp/tmp.Xa81/p", "/tmp/tmp.Xa81/shared", "/tmp"),  # a fresh clone in mktemp -d, as CI checks it
    ("/builds/ci/mrife", "/builds/ci/shared", "/tmp/pytest-of-ci/pytest-3"),
])
def test_paths_sanitize_to_the_same_text_wherever_the_checkout_is(checkout, shared, tmp):
    here = chapter_output("/work/main", "/work/shared", "/tmp")  # where the committed outputs were made
    expected = ("results root: ROOT/results\nFolderDataset('DATA/sichuan-landslide', 36 scenes)\n"
                "ran ROOT/.venv/bin/python in TMPPATH\n")
    assert sanitize(here) == expected
    assert sanitize(chapter_output(checkout, shared, tmp)) == expected


def test_numbers_that_are_not_times_or_addresses_stay():
    assert sanitize("lIoU 0.3934 at epoch 7 (4 s, object at 0x7f3a)") == "lIoU 0.3934 at epoch 7 (SECONDS, object at 0xADDRESS)"


def book_conftest():
    spec = importlib.util.spec_from_file_location("book_conftest", BOOK / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_approx_output_passes_numbers_within_the_tolerance_and_nothing_else():
    differ = book_conftest().numbers_differ
    committed = "last epoch: {'train_loss': 136.2173, 'train_ce': 0.682, 'val_lIoU': 0.0}"
    other_cpu = "last epoch: {'train_loss': 136.1488, 'train_ce': 0.6819, 'val_lIoU': 0.0}"  # AMD EPYC vs Intel Xeon
    assert differ(other_cpu, committed) is None
    assert "not within" in differ(other_cpu.replace("136.1488", "140.0"), committed)
    assert "not within" in differ(other_cpu.replace("'val_lIoU': 0.0", "'val_lIoU': 0.01"), committed)
    assert "text differs" in differ(other_cpu.replace("train_ce", "train_cons"), committed)
    assert "text differs" in differ(committed + " 1", committed), "a number more is a difference"


def test_only_cells_tagged_approx_output_leave_byte_for_byte(monkeypatch):
    conftest = book_conftest()
    assert IPyNbCell.compare_outputs is conftest._compare_outputs
    monkeypatch.setattr(conftest, "_compare", lambda cell, test, ref, skip=None: "nbval's byte-for-byte check")

    class Cell:  # what the comparison reads of nbval's IPyNbCell
        def __init__(self, tags):
            self.cell = {"metadata": {"tags": tags}}

        sanitize = staticmethod(lambda text: text)

    def stream(text):
        return [nbformat.v4.new_output("stream", name="stdout", text=text)]

    tagged, strict = Cell([conftest.TAG]), Cell(["hide-input"])
    assert IPyNbCell.compare_outputs(tagged, stream("loss 0.6819\n"), stream("loss 0.682\n")) is True
    assert IPyNbCell.compare_outputs(tagged, stream("loss 0.75\n"), stream("loss 0.682\n")) is False
    assert "not within" in tagged.comparison_traceback[0]
    assert IPyNbCell.compare_outputs(strict, stream("loss 0.6819\n"), stream("loss 0.682\n")) == \
        "nbval's byte-for-byte check"


def test_no_chapter_tags_a_cell_that_reads_the_committed_runs():
    """Only chapter 10 trains inside the chapter; every other output comes from the
    committed runs and stays strict."""
    tagged = {path.name for path in BOOK.glob("[0-9]*.ipynb")
              for cell in json.loads(path.read_text())["cells"]
              if "approx-output" in cell.get("metadata", {}).get("tags", [])}
    assert tagged == {"10-your-data.ipynb"}, tagged
