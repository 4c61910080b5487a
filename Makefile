# agentcron — every workflow is one make target. Each bootstraps .venv from the
# pinned requirements files the first time (or when they change).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WHEELHOUSE := $(VENV)/wheelhouse
PIP    := $(PY) -m pip --quiet --disable-pip-version-check
# Deployment: STAGE selects .chalice/config.json's stage and the stack agentcron-$(STAGE).
STAGE  ?= dev
STACK  := agentcron-$(STAGE)
DEPLOY_VENV  := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
# Extra `sam deploy --parameter-overrides`, e.g. PARAMS="DefaultAssistant=openai".
PARAMS ?=

.PHONY: run test lint fmt bench bench-peer clean venv package deploy destroy smoke openapi fuzz

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentcron needs Python 3.11+")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt
	# Lambda-platform wheels of the runtime pins, so `make package` works offline.
	$(PIP) download --only-binary=:all: --platform manylinux2014_x86_64 \
	  --python-version 3.11 --implementation cp -d $(WHEELHOUSE) -r requirements.txt
	@touch $@

# Offline-safe region for the local stack (the deploy targets use the caller's own).
run test bench fuzz: export AWS_DEFAULT_REGION ?= us-east-1

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

# build/$(STAGE)/{deployment.zip,sam.json}: no AWS credentials or region needed.
package: $(STAMP)
	$(PY) -m infra.package --stage $(STAGE)

# The SAM CLI deploys Chalice's SAM output; it lives in its own venv (.venv-deploy,
# bootstrapped here) because its pins conflict with the dev venv's.
$(DEPLOY_STAMP): requirements-deploy.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip --quiet --disable-pip-version-check install -r requirements-deploy.txt
	@touch $@

deploy: package $(DEPLOY_STAMP)
	$(DEPLOY_VENV)/bin/sam deploy --template-file build/$(STAGE)/sam.json \
	  --stack-name $(STACK) --resolve-s3 --no-fail-on-empty-changeset \
	  --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND \
	  --tags app=agentcron stage=$(STAGE) $(if $(strip $(PARAMS)),--parameter-overrides $(PARAMS))

destroy: $(DEPLOY_STAMP)
	$(DEPLOY_VENV)/bin/sam delete --stack-name $(STACK) --no-prompts

smoke: $(STAMP)
	$(PY) -m infra.smoke --stage $(STAGE)

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .venv-peer .pytest_cache .mypy_cache .ruff_cache build
