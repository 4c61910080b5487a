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
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

openapi: $(STAMP)
	$(PY) -m chalicelib.api.openapi openapi/

# Schemathesis with a larger budget than make test's (same seed, same checks); prints the
# number of cases it sent.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-40} FUZZ_STEPS=$${FUZZ_STEPS:-60} \
		$(PY) -m pytest tests/contract/test_schemathesis.py -p no:cacheprovider -s -q

bench: $(STAMP)
	$(PY) -m bench

bench-peer:
	$(PYTHON) -m venv .venv-peer
	.venv-peer/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-peer.txt

clean:
	rm -rf $(VENV) .venv-peer .pytest_cache .mypy_cache .ruff_cache
