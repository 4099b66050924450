# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:9721

.PHONY: demo test lint bench tools dashboards clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint,bench]'
	touch $(STAMP)

## Run the exporter against the built-in simulator and print where to look.
demo: $(STAMP)
	$(BIN)/python -m exporter demo --listen $(LISTEN)

## Install the external tools the tests use (Prometheus and promtool) when they can be had.
tools:
	@./scripts/ensure-tools

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench grafana
	$(BIN)/ruff format --check exporter tests bench grafana
	$(BIN)/mypy
	$(BIN)/python grafana/build.py --check

test: $(STAMP) tools lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

## Regenerate the committed Grafana dashboards from grafana/build.py.
dashboards: $(STAMP)
	$(BIN)/python grafana/build.py && PYTHON=$(BIN)/python scripts/sync-chart-files

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
