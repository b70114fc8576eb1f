# Two jobs for a fresh machine: `make book` (train what the book needs, render it) and
# `make test` (the whole test suite). Both build .venv from requirements.lock first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The book's profile: cpu (the real data; its runs are committed), smoke or paper.
export MRIFE_PROFILE ?= cpu
export MRIFE_RESULTS ?= $(CURDIR)/results
# Read the Sichuan scenes from the shared mirror when it is there (no download).
ifneq ($(wildcard ../shared/data/sichuan-landslide),)
export MRIFE_DATA_MIRROR ?= $(abspath ../shared/data)
endif
CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))
# Renders the chapters' stored outputs (_config.yml executes nothing).
JB_BUILD = $(BIN)/jupyter-book build -W -n --keep-going .

.PHONY: book outputs test lab venv browser gpu-wheels clean

# Train what is missing, execute every chapter in place against results/, render.
book: $(STAMP)
	$(BIN)/mrife reproduce --profile $(MRIFE_PROFILE)
	$(BIN)/python book/execute.py $(CHAPTERS)
	$(JB_BUILD)

# The chapters' outputs at the cpu profile from the committed runs, as the repository
# holds them: run after committing new runs (make test checks every cell against them).
outputs: $(STAMP)
	MRIFE_PROFILE=cpu $(BIN)/python book/execute.py $(CHAPTERS)

# The smoke pipeline and the unit tests; every chapter executed at smoke (to its end,
# nothing compared or written); every chapter re-executed at cpu against the committed
# runs, each cell's output checked against the committed one (strict nbval; the few
# cells tagged approx-output, of a run trained inside a chapter, to book/conftest.py's
# tolerance);
# the book rendered, then its pages opened in a real browser (a screenshot of Table
# III goes to _build/table-iii.png).
test: $(STAMP) browser
	$(BIN)/mrife reproduce --profile smoke --no-progress
	MRIFE_PROFILE=smoke $(BIN)/python -m pytest -q -p no:cacheprovider tests
	MRIFE_PROFILE=smoke $(BIN)/python book/execute.py --check $(CHAPTERS)
	MRIFE_PROFILE=cpu $(BIN)/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with book/sanitize.cfg $(CHAPTERS)
	$(JB_BUILD)
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

# For benchmarks/gpu.sh on a GPU machine that has torch, Triton and timm but no registry:
# the locked versions of what such an image lacks, and mrife itself, as Python 3.12 wheels.
gpu-wheels: $(STAMP)
	rm -rf .gpu-wheels build
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --platform manylinux_2_28_x86_64 -d .gpu-wheels $$(grep -iE \
	  '^(segmentation.models.pytorch|pooch|platformdirs|rasterio|affine|cligj|click.plugins)==' requirements.lock)
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w .gpu-wheels . && rm -rf build

clean:
	rm -rf _build $(VENV)
