"""The rendered book, checked in a real browser (Debian's chromium, driven by selenium).

Every HTML page of the build is opened in headless chromium and must: load; decode
every image (``naturalWidth > 0``); show no traceback and no error output; and link only
to pages and anchors of the build that exist. Over all pages, each of the paper's
Tables I-VI must have a section whose heading names it and which holds a table. A
screenshot of the Table III section goes to ``--screenshot`` for a person to look at.

    python book/check_pages.py _build/html --screenshot _build/table-iii.png

Prints one line per failure and exits 1 if there is any, 0 otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

TABLES = ("I", "II", "III", "IV", "V", "VI")
SKIP = {"genindex.html", "search.html"}  # Sphinx's generated pages: no content of ours

# Run in the page: what each check needs, in one round trip.
PAGE_FACTS = """
const images = Array.from(document.images);
return {
  broken_images: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
  images: images.length,
  errors: document.querySelectorAll('.output.traceback, .output.error').length,
  traceback: document.body.innerText.includes('Traceback (most recent call last)'),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  sections: Array.from(document.querySelectorAll('section')).map(s => {
    const h = s.querySelector('h1, h2, h3, h4');
    return [h ? h.textContent : '', s.id, s.querySelectorAll('table').length];
  }),
};
"""


def browser(chromium: str | None = None, driver: str | None = None) -> webdriver.Chrome:
    """Headless chromium (no sandbox: CI runs as root); FileNotFoundError naming what is missing."""
    chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = driver or shutil.which("chromedriver")
    if not chromium or not driver:
        raise FileNotFoundError("chromium and chromedriver are needed (Debian: apt-get install chromium "
                                "chromium-driver; `make test` installs them when missing)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1600"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


def check(site: Path, screenshot: Path | None = None, chromium: str | None = None) -> list[str]:
    """The failures of the built book under ``site`` (its ``index.html`` folder), one line each."""
    site = site.resolve()
    pages = sorted(p for p in site.rglob("*.html") if p.name not in SKIP and "_static" not in p.parts)
    if not pages:
        return [f"{site}: no HTML page (build the book first)"]
    failures, ids, links, tables = [], {}, [], {}
    driver = browser(chromium)
    try:
        for page in pages:
            name = page.relative_to(site).as_posix()
            driver.get(page.as_uri())
            facts = driver.execute_script(PAGE_FACTS)
            failures += [f"{name}: image does not decode: {src}" for src in facts["broken_images"]]
            if facts["errors"] or facts["traceback"]:
                failures.append(f"{name}: shows an error output or a traceback")
            ids[page] = set(facts["ids"])
            links += [(name, href) for href in facts["links"]]
            for heading, section, n_tables in facts["sections"]:
                for numeral in TABLES:
                    if n_tables and re.search(rf"\bTable {numeral}\b", heading):
                        tables.setdefault(numeral, (page, section))
        failures += _broken_links(site, links, ids)
        failures += [f"no section names Table {n} and holds a table" for n in TABLES if n not in tables]
        if screenshot is not None and "III" in tables:
            page, section = tables["III"]
            driver.get(f"{page.as_uri()}#{section}")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    return failures


def _broken_links(site: Path, links: list[tuple[str, str]], ids: dict[Path, set[str]]) -> list[str]:
    """Links into the build whose page or anchor does not exist."""
    failures = []
    for name, href in links:
        parts = urlsplit(href)
        if parts.scheme != "file":
            continue  # the web: not checked offline
        target = Path(unquote(parts.path))
        if not target.is_relative_to(site):
            failures.append(f"{name}: link leaves the build: {href}")
        elif not target.exists():
            failures.append(f"{name}: link to a missing page: {href}")
        elif parts.fragment and target in ids and unquote(parts.fragment) not in ids[target]:
            failures.append(f"{name}: link to a missing anchor: {href}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", type=Path, help="the built HTML (e.g. _build/html)")
    parser.add_argument("--screenshot", type=Path, help="where to save the Table III page (PNG)")
    args = parser.parse_args(argv)
    failures = check(args.site, args.screenshot)
    for line in failures:
        print(line)
    pages = sum(1 for p in args.site.rglob("*.html") if p.name not in SKIP and "_static" not in p.parts)
    print(f"{pages} pages checked in chromium: {len(failures)} failures"
          + (f"; screenshot: {args.screenshot}" if args.screenshot else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
