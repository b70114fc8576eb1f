# Two jobs for a fresh machine: `make book` (train what the book needs, render it) and
# `make test` (the whole test suite). Both build .venv from requirements.lock first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The book's profile: cpu (the real data, about 2 hours on 2 cores), smoke or paper.
export MRIFE_PROFILE ?= cpu
export MRIFE_RESULTS ?= $(CURDIR)/results
# Read the Sichuan scenes from the shared mirror when it is there (no download).
ifneq ($(wildcard ../shared/data/sichuan-landslide),)
export MRIFE_DATA_MIRROR ?= $(abspath ../shared/data)
endif
JB_BUILD = $(BIN)/jupyter-book build -W -n --keep-going .

.PHONY: book test lab venv browser clean

book: $(STAMP)
	$(BIN)/mrife reproduce --profile $(MRIFE_PROFILE)
	$(JB_BUILD)

# Unit tests, then every chapter under nbval and the book build, on the smoke profile,
# then the built pages in a real browser (screenshot of Table III: _build/table-iii.png).
test: $(STAMP) browser
	$(BIN)/mrife reproduce --profile smoke --no-progress
	MRIFE_PROFILE=smoke $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax \
		--nbval-sanitize-with book/sanitize.cfg tests book
	MRIFE_PROFILE=smoke $(JB_BUILD)
	$(BIN)/python book/check_pages.py _build/html --screenshot _build/table-iii.png

# Debian's chromium and its driver for book/check_pages.py, installed when missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# JupyterLab on the book's chapters, with the environment and the profile `make book` uses:
# open a chapter and run it to re-execute it against results/$(MRIFE_PROFILE)/.
lab: $(STAMP)
	cd book && ../$(BIN)/jupyter lab

venv: $(STAMP)

# Rebuilt when the pinned versions or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

clean:
	rm -rf _build $(VENV)
