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
export MPLBACKEND ?= Agg

.PHONY: help venv lib check unit notebooks nbval book serve browser lint test bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP) ## create .venv with everything the book needs

lib: venv ## regenerate d2l_lib from the chapters' #@save cells
	$(PY) tools/extract_lib.py

check: venv ## fast consistency checks: library up to date, notebooks paired, lint
	$(PY) tools/extract_lib.py --check
	$(VENV)/bin/ruff check .

unit: venv ## unit tests
	$(PY) -m pytest -q tests

test: check unit ## everything CI runs

clean: ## remove build outputs
	rm -rf _build
