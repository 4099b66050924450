# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:9721
# A copy of the tree whose hot modules are the mypyc extensions (scripts/compiled-tree).
COMPILED := build/compiled
# The sdist, the pure wheel and the compiled wheel built from the sdist (scripts/build-dist):
# built once, tested by tests/test_packaging.py, and the source of the compiled tree's extensions.
DIST := build/dist
DIST_INPUTS := setup.py pyproject.toml README.md LICENSE $(shell git ls-files --cached --others \
	--exclude-standard exporter 2>/dev/null)
COMPILED_INPUTS := setup.py pyproject.toml $(shell git ls-files --cached --others \
	--exclude-standard exporter tests bench 2>/dev/null)
# Tests of the rules, dashboards, chart and image: the same files in both builds, run once.
NOT_RUNTIME := --ignore=tests/test_alerts.py --ignore=tests/test_dockerfile.py \
	--ignore=tests/test_grafana_build.py --ignore=tests/test_grafana_yamlout.py \
	--ignore=tests/test_helm_chart.py --ignore=tests/e2e/test_dashboards_prometheus.py \
	--ignore=tests/test_release_version.py --ignore=tests/test_workflows.py \
	--ignore=tests/test_compose.py --ignore=tests/test_packaging.py \
	--ignore=tests/test_slo_rules.py --ignore=tests/test_helm_slo.py \
	--ignore=tests/test_slo_dashboard.py --ignore=tests/e2e/test_fire_drills.py \
	--ignore=tests/test_sdk_interop.py --ignore=tests/test_alertmanager.py \
	--ignore=tests/test_rule_cost.py

.PHONY: demo test test-pure test-compiled lint bench bench-pure tools dashboards clean
.PHONY: test-installed bench-smoke bench-rules

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint,bench,release]'
	touch $(STAMP)

## Run the exporter against the built-in simulator and print where to look.
demo: $(STAMP)
	$(BIN)/python -m exporter demo --listen $(LISTEN)

## Install the external tools the tests use (Prometheus, amtool, Chromium) when they can be had.
tools:
	@./scripts/ensure-tools

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench grafana scripts setup.py
	$(BIN)/ruff format --check exporter tests bench grafana scripts setup.py
	$(BIN)/mypy
	$(BIN)/python grafana/build.py --check

$(DIST)/.built: $(STAMP) $(DIST_INPUTS)
	./scripts/build-dist $(BIN)/python $(DIST)
	touch $@

$(COMPILED)/.built: $(DIST)/.built $(COMPILED_INPUTS)
	./scripts/compiled-tree $(BIN)/python $(COMPILED) $(wildcard $(DIST)/compiled/*.whl)
	touch $@

## Every test, against the pure-Python source and against the compiled build.
test: lint test-pure test-compiled

test-pure: $(STAMP) tools $(DIST)/.built
	REQUENCE_EXPORTER_DIST=$(DIST) $(BIN)/python -m pytest -q

test-compiled: $(COMPILED)/.built tools
	cd $(COMPILED) && REQUENCE_EXPORTER_EXPECT_COMPILED=1 \
		$(CURDIR)/$(BIN)/python -m pytest -q -p no:cacheprovider $(NOT_RUNTIME)

## The runtime tests against an installed wheel (INSTALLED_PYTHON has it and the test needs),
## in a copy of the tree without exporter/: the release workflow runs it on every wheel.
test-installed:
	./scripts/installed-tests $(INSTALLED_PYTHON) $(NOT_RUNTIME)

## The benchmark, against the compiled build (what the image ships); bench-pure: the source.
bench: $(COMPILED)/.built
	cd $(COMPILED) && $(CURDIR)/$(BIN)/python -m bench --out $(CURDIR)/bench/results

bench-pure: $(STAMP)
	$(BIN)/python -m bench

## The benchmark at tiny sizes (seconds): proves the harness runs, measures nothing.
bench-smoke: $(COMPILED)/.built
	cd $(COMPILED) && $(CURDIR)/$(BIN)/python -m bench --smoke --out $(CURDIR)/build/bench-smoke

## What the alert rules cost Prometheus: samples per evaluation and per minute at 6 h and 28 d,
## for 10 and 100 task names on 3 instances, and the rule groups' evaluation times (bench/rules.py).
bench-rules: $(STAMP) tools
	$(BIN)/python -m bench.rules --chart --out $(CURDIR)/bench/results/rules.json

## Regenerate the committed Grafana dashboards from grafana/build.py.
dashboards: $(STAMP)
	$(BIN)/python grafana/build.py && PYTHON=$(BIN)/python scripts/sync-chart-files

clean:
	rm -rf $(VENV) $(COMPILED) .mypy_cache .ruff_cache .pytest_cache
