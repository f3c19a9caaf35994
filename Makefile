# Two commands matter to a new user: `make demo` and `make test`. Everything they need
# (virtualenv, pip packages, Azurite from npm) is installed here, idempotently.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
# The stamp changes whenever a requirements file does, so `make` reinstalls only then.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
PY_STAMP := $(VENV)/.installed-$(REQ_HASH)
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=
# The suite mostly waits on Azurite, the Speech emulator and subprocesses, so three workers
# on two cores cut it from ~8 to ~3.5 minutes. Each worker starts its own Azurite and Speech
# emulator on free ports; `--dist loadfile` keeps a module's tests (and fixtures) together.
PYTEST_WORKERS ?= 3
N ?= 1000
FILE ?=
INSTANCES ?= 1

.PHONY: help setup test lint typecheck unit demo run upload bench samples clean

help:
	@echo "make demo    - transcribe the sample calls end to end, locally, no Azure account"
	@echo "make test    - lint, type-check and run the whole test suite"
	@echo "make run     - start Azurite, the local Speech service and the app; drop files in"
	@echo "make upload FILE=call.wav - upload a recording into the input container"
	@echo "make bench N=1000 - benchmark the pipeline on N synthetic recordings"

$(PY_STAMP): requirements.txt requirements-dev.txt
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (it installs Azurite and the Node.js 22 it runs on)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(PY_STAMP) $(NODE_STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

unit: setup
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

demo: setup
	$(PYTHON) -m devhost.stack demo

run: setup
	$(PYTHON) -m devhost.stack run --instances $(INSTANCES)

upload: setup
	@test -n "$(FILE)" || { echo "usage: make upload FILE=path/to/recording.wav"; exit 2; }
	$(PYTHON) -m devhost.stack upload "$(FILE)"

bench: setup
	$(PYTHON) -m bench --files $(N)

samples: setup
	bash samples/make_samples.sh

clean:
	rm -rf .run .bench .pytest_cache .mypy_cache .ruff_cache
