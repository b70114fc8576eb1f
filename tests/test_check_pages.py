"""book/check_pages.py: the browser check of the rendered book finds what it is there to find."""

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

spec = importlib.util.spec_from_file_location("check_pages", Path(__file__).parents[1] / "book" / "check_pages.py")
check_pages = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_pages)

pytestmark = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                                reason="needs chromium and chromedriver (`make test` installs them)")

TABLE = "<table><tr><td>1</td></tr></table>"


def _site(root: Path, body: str) -> Path:
    """A one-page site with a decodable image beside it, and a second page with an anchor."""
    root.mkdir()
    Image.new("RGB", (4, 3), "red").save(root / "ok.png")
    (root / "other.html").write_text('<html><body><section id="there"><h2>There</h2></section></body></html>')
    sections = "".join(f'<section id="t{n}"><h2>Table {n}</h2>{TABLE}</section>' for n in check_pages.TABLES)
    (root / "index.html").write_text(f'<html><body><img src="ok.png">{sections}{body}</body></html>')
    return root


def test_a_clean_site_passes_and_the_screenshot_is_written(tmp_path):
    site = _site(tmp_path / "site", '<a href="other.html#there">ok</a><a href="https://example.org">web</a>')
    shot = tmp_path / "shot.png"
    assert check_pages.check(site, shot) == []
    assert Image.open(shot).size[0] > 0, "the screenshot must be a PNG"


def test_each_fault_is_reported(tmp_path):
    body = ('<img src="missing.png"><a href="gone.html">x</a><a href="other.html#nowhere">y</a>'
            '<div class="output traceback">Traceback (most recent call last):</div>')
    site = _site(tmp_path / "site", body)
    (site / "index.html").write_text((site / "index.html").read_text().replace("<h2>Table V</h2>", "<h2>V</h2>"))
    failures = check_pages.check(site)
    expected = ["index.html: image does not decode: missing.png", "index.html: shows an error output or a traceback",
                "link to a missing page", "link to a missing anchor", "no section names Table V and holds a table"]
    for needle in expected:
        assert any(needle in line for line in failures), f"{needle!r} not reported in {failures}"
    assert len(failures) == len(expected), f"one line per fault expected: {failures}"


def test_an_empty_build_fails(tmp_path):
    assert check_pages.check(tmp_path) == [f"{tmp_path.resolve()}: no HTML page (build the book first)"]


def test_the_pages_workflow_builds_as_make_test_does():
    """The workflow that publishes the book installs Jupyter Book at the versions
    requirements.lock pins and runs the Makefile's build command, executing nothing."""
    root = Path(__file__).resolve().parent.parent
    steps = yaml.safe_load((root / ".github/workflows/book.yml").read_text())["jobs"]["build"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    pattern = re.search(r"grep -E '(.+?)' requirements.lock", commands[0]).group(1)
    pinned = [line for line in (root / "requirements.lock").read_text().splitlines() if re.match(pattern, line)]
    assert len(pinned) == 5, f"the five Jupyter Book packages, pinned: {pinned}"
    build = re.search(r"^JB_BUILD = \$\(BIN\)/(.+)$", (root / "Makefile").read_text(), re.M).group(1)
    assert commands[1] == build, (commands[1], build)
    assert 'execute_notebooks: "off"' in (root / "_config.yml").read_text(), "the build renders stored outputs"
