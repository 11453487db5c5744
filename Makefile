# Borderwatch: `make run` starts everything for a demo, `make test` runs the whole suite,
# `make bench` measures ingest against its baselines. Each installs what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# Tests and benchmarks get their own PostgreSQL and Mosquitto, apart from the `make run` ones.
TEST_RUN_DIR := $(CURDIR)/.run/test
BENCH_RUN_DIR := $(CURDIR)/.run/bench
EVAL_RUN_DIR := $(CURDIR)/.run/eval

.PHONY: install system run services-up services-down services-status lint format test bench bench-maps eval clean help

help:
	@echo "make run    - install, start PostGIS + Mosquitto, load borders, run ingest + API + simulator"
	@echo "make test   - install, lint (ruff, import-linter), start the test services, run the whole test suite"
	@echo "make lint   - ruff (lint and format check) and the layer contracts (lint-imports)"
	@echo "make format - ruff: fix what can be fixed and format the code"
	@echo "make bench  - install, start the bench services, run the benchmark suite (ingest, latency, growth, map)"
	@echo "make eval   - install, start the eval services, score the alert rules on labelled scenarios"
	@echo "make services-down - stop the project-local services"
	@echo "make clean  - stop the services, delete .run; PURGE=1 also deletes their data for a fresh start"
	@echo "              (as root it lives on in /var/lib/borderwatch/<hash>, and a new clone here would take it over)"

system:
	bash scripts/install-system.sh

install: $(STAMP)

$(STAMP): pyproject.toml
	bash scripts/install-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

services-up: install
	$(BIN)/borderwatch services up

services-down:
	-$(BIN)/borderwatch services down
	-BW_RUN_DIR=$(TEST_RUN_DIR) $(BIN)/borderwatch services down
	-BW_RUN_DIR=$(BENCH_RUN_DIR) $(BIN)/borderwatch services down
	-BW_RUN_DIR=$(EVAL_RUN_DIR) $(BIN)/borderwatch services down

services-status:
	$(BIN)/borderwatch services status

run: install
	$(BIN)/borderwatch run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install lint
	bash scripts/install-system.sh --test-tools
	BW_RUN_DIR=$(TEST_RUN_DIR) $(BIN)/borderwatch services up
	BW_RUN_DIR=$(TEST_RUN_DIR) $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	bash scripts/install-system.sh --test-tools
	BW_RUN_DIR=$(BENCH_RUN_DIR) $(BIN)/borderwatch services up
	BW_RUN_DIR=$(BENCH_RUN_DIR) $(BIN)/python -m tests.bench.suite $(BENCH_ARGS)

bench-maps: install
	bash scripts/install-system.sh --test-tools
	BW_RUN_DIR=$(BENCH_RUN_DIR) $(BIN)/borderwatch services up
	BW_RUN_DIR=$(BENCH_RUN_DIR) $(BIN)/python -m tests.bench.maps $(BENCH_ARGS)

eval: install
	BW_RUN_DIR=$(EVAL_RUN_DIR) $(BIN)/borderwatch services up
	BW_RUN_DIR=$(EVAL_RUN_DIR) $(BIN)/python -m tests.eval.run $(EVAL_ARGS)

# PURGE=1: also delete the services' data (databases, broker files, passwords), which as root
# lives in /var/lib/borderwatch/<hash of the run dir> and outlives .run.
clean: services-down
ifeq ($(PURGE),1)
	$(BIN)/borderwatch services purge --yes
	BW_RUN_DIR=$(TEST_RUN_DIR) $(BIN)/borderwatch services purge --yes
	BW_RUN_DIR=$(BENCH_RUN_DIR) $(BIN)/borderwatch services purge --yes
	BW_RUN_DIR=$(EVAL_RUN_DIR) $(BIN)/borderwatch services purge --yes
endif
	rm -rf .run
