"""The README's Python examples run as written: every ```python block, in order, in one
fresh process, in a folder holding the ``scene.png`` they name. They train a smoke run
(seconds), so the later tests of this file use it: ``mrife train`` of the same run says it
was finished earlier and skips it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrife.cli import main
from mrife.results import reproduction_time

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """A folder where the README's examples ran; it holds their ``runs/``."""
    folder = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 100, 3), dtype=np.uint8), "RGB").save(folder / "scene.png")
    blocks = python_blocks(README.read_text())
    code = "\n".join(blocks) + "\nprint('shape', probability.shape, tuple(logits.shape))\n"
    # One core: the suite may run beside other work, and fit takes every core it is given.
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    done = subprocess.run([*pin, sys.executable, "-c", code], cwd=folder, capture_output=True, text=True,
                          env=os.environ | {"OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, f"the README's Python examples failed:\n{done.stderr[-3000:]}"
    assert "shape (90, 100) (1, 2, 64, 64)" in done.stdout, done.stdout
    return folder


def test_the_readme_has_the_examples_it_promises():
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 2, f"expected the two Python examples of 'Use', found {len(blocks)}"
    assert "mrife.predict.predict(" in blocks[0] and "model(inputs)" in blocks[1]


def test_the_readmes_python_examples_run_as_written(readme_folder):
    runs = list((readme_folder / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("segbranch-"), runs


def test_training_a_finished_run_says_it_skipped_it(readme_folder, capsys):
    argv = ["train", "--profile", "smoke", "--set", "model.name=segbranch", "--set", "train.threads=1",
            "--out", str(readme_folder / "runs"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "finished earlier: skipped (--force trains it again)" in out, out
    assert "test split, best-validation checkpoint (test_metrics.json):" in out, "the metrics should say their split"


@pytest.mark.audit
def test_the_readmes_profiles_table_gives_the_cpu_reproductions_measured_time():
    # The committed runs' own wall times (chapter 5's t5-hours), so the row cannot drift from them.
    machine = reproduction_time("cpu", README.parent / "results")
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `cpu` |"))
    assert f"its {machine.loc['all', 'runs']} runs took {machine.loc['all', 'hours']:.1f} h" in row, row
