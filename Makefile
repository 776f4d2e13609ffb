# One entry point for people and CI.
#   make worker            set up, migrate, and run the email worker (FAMILY=email)
#   make test              lint, type-check and run the whole test suite
#   make bench             print the benchmarks (the runtime against ARQ and SAQ, e-mail delivery,
#                          sync, backup, telemetry, dashboard)
#   make lock              pin the image's dependencies (after changing pyproject.toml's)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FAMILY ?= email

.PHONY: setup worker lint test bench lock

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

worker: setup
	$(BIN)/python -m jobs worker $(FAMILY)

lint: setup
	$(BIN)/ruff check jobs tests examples benchmarks
	$(BIN)/ruff format --check jobs tests examples benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: setup
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m benchmarks.runtime
	$(BIN)/python -m benchmarks.email_delivery
	$(BIN)/python -m benchmarks.sync
	$(BIN)/python -m benchmarks.backup
	$(BIN)/python -m benchmarks.telemetry_cost
	$(BIN)/python -m benchmarks.dashboard

# The image installs these, hash-checked; tests/test_lock_files.py fails when they fall behind.
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 \
	--python-platform linux --generate-hashes

lock: setup
	$(UV_COMPILE) --output-file requirements.lock
	$(UV_COMPILE) --extra web --output-file requirements-web.lock
