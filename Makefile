# Commands of the project. The embedded configuration lives in config/embedded.env (one place);
# any variable set in the environment overrides it.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PROJECT_ROOT := $(CURDIR)
VENV := $(PROJECT_ROOT)/.venv
BIN := $(VENV)/bin
# MODE=distributed layers config/distributed.env (CeleryExecutor, PostgreSQL, Redis, MLflow server) on top.
MODE ?= embedded
# pytest-xdist workers of `make test` (tests/conftest.py: XDIST_LANES); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
# Runs a command with the configuration of MODE exported.
WITH_ENV = set -a; MLOPS_PROJECT_ROOT="$(PROJECT_ROOT)"; \
  $(if $(filter distributed,$(MODE)),. "$(PROJECT_ROOT)/config/distributed.env";,) \
  . "$(PROJECT_ROOT)/config/embedded.env"; set +a;

.PHONY: help install init demo up test test-unit lint docs bench dashboards clean training-requirements training-image constraints

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/airflow: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.5"
	uv sync --frozen --all-extras --compile-bytecode
	@$(VENV)/bin/python -m compileall -q src dags >/dev/null  # as an installed wheel: byte code beside the source
	@touch $@

install: $(BIN)/airflow  ## create .venv and install the locked dependencies (uv sync --frozen)

init: install  ## initialise the embedded Airflow (SQLite DB, pools) and MLOPS_HOME
	@$(WITH_ENV) mkdir -p "$$AIRFLOW_HOME" "$$MLOPS_HOME" && \
	  $(BIN)/airflow db migrate >"$$AIRFLOW_HOME/db-migrate.log" 2>&1 || { tail -20 "$$AIRFLOW_HOME/db-migrate.log"; exit 1; }; \
	  $(BIN)/airflow pools import config/pools.json >/dev/null

demo: init  ## quickstart 1: start Airflow, check every DAG loads, print a summary (KEEP_RUNNING=1 to explore)
	@$(WITH_ENV) $(BIN)/python include/demo/run_demo.py $(if $(KEEP_RUNNING),--keep-running,)

up: init  ## run `airflow standalone` in the foreground with our DAGs; Ctrl-C stops it cleanly
	@$(WITH_ENV) $(BIN)/python include/demo/run_demo.py --foreground

test: install  ## quickstart 2: the whole test suite (unit, integration, e2e, docker); TEST_WORKERS=0: one process
	@$(WITH_ENV) $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-unit: install  ## the fast tests only
	@$(WITH_ENV) $(BIN)/pytest -m unit $(PYTEST_ARGS)

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src/mlops_provider

docs: install  ## build the docs (mkdocs --strict: a warning fails) into .site/
	$(BIN)/mkdocs build --strict

bench: install  ## run the benchmark suite, write docs/benchmarks.md (BENCH_ARGS=--quick: smaller sizes)
	@$(WITH_ENV) $(BIN)/python bench/run_all.py $(BENCH_ARGS)

dashboards: install  ## regenerate the Grafana dashboard of the live endpoints (include/grafana/dashboards/*.json)
	$(BIN)/python include/grafana/generate.py

training-requirements:  ## export the training image's pinned requirements from uv.lock
	uv export --frozen --only-group training --no-hashes --no-header --no-annotate --format requirements-txt \
	  > include/training/requirements.txt

constraints:  ## write constraints/constraints-<python>.txt from uv.lock (AIRFLOW=3.2.2: that Airflow's, resolved)
	$(BIN)/python constraints/generate.py $(if $(AIRFLOW),--airflow $(AIRFLOW),)

training-image:  ## build the training image (mlops-training:latest) on the local Docker engine
	docker build --network host -t mlops-training:latest -f include/training/Dockerfile include/training

clean:  ## remove the default homes of this checkout, .airflow and .mlops (keeps .venv; homes set elsewhere stay)
	rm -rf .airflow .mlops
