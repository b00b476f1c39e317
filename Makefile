# The book's commands. A fresh machine needs only python3 (3.10+) and make:
#   make book   build the site into _build/html (creates .venv on first use)
#   make test   everything CI checks
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Tests and CI read The Time Machine from the shared data folder beside the checkout;
# readers without it download the file (see the data chapter).
ifneq ($(wildcard ../shared/data/timemachine.txt),)
export D2L_DATA_DIR ?= $(abspath ../shared/data)
endif
export PYTHONHASHSEED := 0
# No MPLBACKEND here: a kernel started with MPLBACKEND=Agg shows no figures, and notebooks,
# nbval and the book build all start kernels from this environment.

.PHONY: help venv lib check unit notebooks nbval book book-exec serve browser browser-deps lint test test-gpu perturb newest-torch bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	bash booktools/system_deps.sh venv
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP) ## create .venv with everything the book needs

lib: venv ## regenerate d2l_lib from the chapters' #@save cells
	$(PY) -m booktools.library

# Chapters `make notebooks` refreshes: all by default; `make notebooks CHAPTERS=rnn_scratch`.
CHAPTERS ?=
notebooks: lib ## regenerate notebooks/*.ipynb from book/*.md and execute them (CHAPTERS=name)
	$(PY) -m booktools.notebooks sync $(CHAPTERS)

check: venv ## fast consistency checks: library up to date, notebooks paired, Colab cells, ruff
	$(PY) -m booktools.library --check
	$(PY) -m booktools.notebooks check
	$(VENV)/bin/ruff check .

# One torch thread, as everywhere else: with two OpenMP threads on two busy cores, the threads
# wait on each other (a 256 x 256 eigenvalue problem took 37 s instead of a fraction of one).
# The tests run side by side, one pytest-xdist worker per core (each test builds what it needs
# in its own temporary folder).
UNIT_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
unit: venv ## unit tests
	MPLBACKEND=Agg OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -m "not browser" \
		-p no:cacheprovider -n $(UNIT_WORKERS) tests

# nbval re-executes every notebook (kernel: this .venv, working directory notebooks/) and
# compares outputs with the stored ones after tests/nbval_sanitize.cfg; cells tagged
# nbval-ignore-output are run but not compared (the assert after each bounds the result);
# at the end it prints how many cells it compared exactly and how many it bounded.
# The notebooks run side by side (pytest-xdist, one worker per core, each notebook whole on
# one worker, the longest first: conftest.py orders them by their recorded times), each kernel
# with one torch thread, as `make notebooks` ran them.
NBVAL_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
NBVAL_OPTS := -p no:cacheprovider --nbval-current-env --nbval-cell-timeout 600 \
	--nbval-sanitize-with tests/nbval_sanitize.cfg -n $(NBVAL_WORKERS) --dist loadfile \
	--no-loadscope-reorder
# The re-execution uses other numerics than the run that stored the outputs (MKL's
# compatible code path: other rounding in every matrix product), so that a cell compared
# exactly here is exact on another processor too, and a bounding assert is tested off the
# reference numerics. `make perturb` tries more variants (ATen's CPU level, shifted seeds).
NBVAL_NUMERICS ?= MKL_CBWR=COMPATIBLE
nbval: venv ## re-execute every notebook under other numerics and compare outputs with the stored ones
	$(NBVAL_NUMERICS) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q $(NBVAL_OPTS) --nbval notebooks/

lint: venv ## lint the GitHub workflow files against their JSON schema (offline)
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# The site, rendered from the outputs stored in notebooks/ (no chapter is executed; a stale,
# missing or unexecuted notebook stops the build, naming the fix: _ext/stored_outputs.py).
# _toc.yml is checked first (booktools.toc): Jupyter Book reads it before any extension runs,
# and a malformed one then gets the same error as from `make lib` and `make notebooks`.
# Always built from scratch: an incremental build hides the warnings of pages it does not
# re-read. `make book-exec` executes every chapter during the build instead (slow).
BOOK_OPTS := --builder html --warningiserror --nitpick --keep-going
PORT ?= 8000
BUILD_FROM_SCRATCH := rm -rf _build/html _build/.doctrees _build/.jupyter_cache _build/jupyter_execute
book: venv ## build the site into _build/html from the executed notebooks (-W -n, ~15 s)
	$(PY) -m booktools.toc
	$(BUILD_FROM_SCRATCH)
	$(VENV)/bin/jupyter-book build . $(BOOK_OPTS)
	@echo "The book is built: open file://$(CURDIR)/_build/html/index.html, or run 'make serve'."

book-exec: venv ## build the site while executing every chapter (the slow, pre-notebooks way)
	$(PY) -m booktools.toc
	$(BUILD_FROM_SCRATCH)
	BOOK_EXECUTE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/jupyter-book build . $(BOOK_OPTS)
	@echo "The book is built: open file://$(CURDIR)/_build/html/index.html, or run 'make serve'."

serve: ## serve the built site at http://127.0.0.1:8000 (PORT=...)
	@test -f _build/html/index.html || { echo "No site in _build/html: run 'make book'."; exit 1; }
	@echo "Serving _build/html at http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	python3 -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

browser-deps: venv ## a Chromium for the browser test: apt-get with root/sudo, else Playwright's
	bash booktools/system_deps.sh chromium

browser: book browser-deps ## open every page of the built site in headless Chromium (tests/test_site.py)
	$(PY) -m pytest -q -p no:cacheprovider -m browser tests/test_site.py

# CI's order: cheap checks first, then everything that executes the chapters.
test: check unit nbval book browser lint ## everything CI runs

test-gpu: venv ## execute every notebook (on CUDA when there is one): asserts, lax comparison
	$(PY) -m booktools.notebooks run --out _build/executed

# Every chapter executed again under other numerics (ATen's CPU level, MKL's compatible path)
# and shifted seeds; which cells raise and how far each glued number moves
# (booktools/notebooks/perturb.py). About 25 min on 2 cores; not part of `make test`.
perturb: venv ## execute every chapter under numeric and seed variants; report in bench/results/
	$(PY) -m booktools.notebooks.perturb --report bench/results/perturbation \
		$(if $(CHAPTERS),--update $(CHAPTERS))

# A second environment with the newest torch the package index serves (on Linux a CUDA
# build of several GB), in which every notebook runs laxly: errors and asserts only, as
# `make test-gpu`. Readers of Colab or a fresh `pip install torch` get such a torch.
# Not part of `make test`; the maintainers page records its result.
NEWEST_VENV := .venv-newest
newest-torch: ## every notebook run laxly under the newest torch release (a second venv, GBs)
	python3 -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install -q --upgrade pip
	grep -v '^torch==' requirements.txt > $(NEWEST_VENV)/requirements-newest.txt
	$(NEWEST_VENV)/bin/python -m pip install -q --upgrade torch -r $(NEWEST_VENV)/requirements-newest.txt
	$(NEWEST_VENV)/bin/python -m pip install -q --no-deps -e .
	$(NEWEST_VENV)/bin/python -m booktools.notebooks run --out _build/newest-torch

bench: venv ## time this book against d2l 1.0.3, and the book build (BENCH_REPS=1: one repetition)
	bash bench/setup_reference.sh
	$(PY) bench/run.py

clean: ## remove build outputs
	rm -rf _build
