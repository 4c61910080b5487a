# agentcron — every workflow is one make target. Each bootstraps .venv from the
# pinned requirements files the first time (or when they change).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Offline-safe defaults for anything that talks to "AWS" locally.
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test lint fmt bench bench-peer clean venv openapi fuzz

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentcron needs Python 3.11+")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(STAMP)
	$(PY) -m chalicelib.local.stack

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

fmt: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

openapi: $(STAMP)
	$(PY) -m chalicelib.api.openapi openapi/

bench: $(STAMP)
	$(PY) -m bench

bench-peer:
	$(PYTHON) -m venv .venv-peer
	.venv-peer/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-peer.txt

clean:
	rm -rf $(VENV) .venv-peer .pytest_cache .mypy_cache .ruff_cache
