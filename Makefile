# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:9721
# A copy of the tree whose hot modules are the mypyc extensions (scripts/compiled-tree).
COMPILED := build/compiled
COMPILED_INPUTS := setup.py pyproject.toml $(shell git ls-files --cached --others \
	--exclude-standard exporter tests bench 2>/dev/null)
# Tests of the rules, dashboards, chart and image: the same files in both builds, run once.
NOT_RUNTIME := --ignore=tests/test_alerts.py --ignore=tests/test_dockerfile.py \
	--ignore=tests/test_grafana_build.py --ignore=tests/test_grafana_yamlout.py \
	--ignore=tests/test_helm_chart.py --ignore=tests/e2e/test_dashboards_prometheus.py \
	--ignore=tests/test_slo_rules.py --ignore=tests/test_helm_slo.py \
	--ignore=tests/test_slo_dashboard.py --ignore=tests/e2e/test_fire_drills.py

.PHONY: demo test test-pure test-compiled lint bench bench-pure tools dashboards clean

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
	$(BIN)/ruff check exporter tests bench grafana setup.py
	$(BIN)/ruff format --check exporter tests bench grafana setup.py
	$(BIN)/mypy
	$(BIN)/python grafana/build.py --check

$(COMPILED)/.built: $(STAMP) $(COMPILED_INPUTS)
	./scripts/compiled-tree $(BIN)/python $(COMPILED)
	touch $@

## Every test, against the pure-Python source and against the compiled build.
test: lint test-pure test-compiled

test-pure: $(STAMP) tools
	$(BIN)/python -m pytest -q

test-compiled: $(COMPILED)/.built tools
	cd $(COMPILED) && REQUENCE_EXPORTER_EXPECT_COMPILED=1 \
		$(CURDIR)/$(BIN)/python -m pytest -q -p no:cacheprovider $(NOT_RUNTIME)

## The benchmark, against the compiled build (what the image ships); bench-pure: the source.
bench: $(COMPILED)/.built
	cd $(COMPILED) && $(CURDIR)/$(BIN)/python -m bench --out $(CURDIR)/bench/results

bench-pure: $(STAMP)
	$(BIN)/python -m bench

## Regenerate the committed Grafana dashboards from grafana/build.py.
dashboards: $(STAMP)
	$(BIN)/python grafana/build.py && PYTHON=$(BIN)/python scripts/sync-chart-files

clean:
	rm -rf $(VENV) $(COMPILED) .mypy_cache .ruff_cache .pytest_cache
