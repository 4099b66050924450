# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two installs into one venv, neither editable: the package with its dependencies (what `make
# demo` needs, re-installed when the package changes), and that plus the test, lint, bench and
# release extras (what `make test` needs). The tests import the source tree, not the copy.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:9721
# A copy of the tree whose hot modules are the mypyc extensions (scripts/compiled-tree).
COMPILED := build/compiled
# The sdist, and the pure and compiled wheels built from it alone in a bare venv as the release
# builds them (scripts/build-dist): built once, rehearsed by `make release-check`, and the source
# of the compiled tree's extensions.
DIST := build/dist
PACKAGE_INPUTS := setup.py pyproject.toml MANIFEST.in README.md LICENSE \
	$(shell git ls-files --cached --others --exclude-standard exporter 2>/dev/null)
COMPILED_INPUTS := setup.py pyproject.toml $(shell git ls-files --cached --others \
	--exclude-standard exporter tests bench 2>/dev/null)
# Tests of the rules, dashboards, chart, image and benchmark prototype: the same files in both
# builds, run once.
NOT_RUNTIME := --ignore=tests/test_alerts.py --ignore=tests/test_dockerfile.py \
	--ignore=tests/test_grafana_build.py \
	--ignore=tests/test_helm_chart.py --ignore=tests/e2e/test_dashboards_prometheus.py \
	--ignore=tests/test_release_version.py --ignore=tests/test_workflows.py \
	--ignore=tests/test_compose.py --ignore=tests/test_packaging.py \
	--ignore=tests/test_slo_rules.py --ignore=tests/test_helm_slo.py \
	--ignore=tests/test_slo_dashboard.py --ignore=tests/e2e/test_fire_drills.py \
	--ignore=tests/test_prototype_frame.py --ignore=tests/test_bench_profiles.py \
	--ignore=tests/test_sdk_interop.py --ignore=tests/test_doc_commands.py \
	--ignore=tests/test_docs_reference.py --ignore=tests/test_alertmanager.py \
	--ignore=tests/test_rule_cost.py

.PHONY: demo check test test-pure test-compiled lint bench bench-pure tools dashboards clean
.PHONY: test-installed bench-smoke bench-rules bench-prototype release-check profiles

# pip's own output goes to a log, shown whole when an install fails.
PIP_LOG := $(VENV)/pip.log
quietly = $(1) >$(PIP_LOG) 2>&1 || { cat $(PIP_LOG) >&2; exit 1; }
DEV_EXTRAS := .[test,lint,bench,release]
# Two tests at a time (pytest-xdist), each worker taking the next when it is free: most tests
# wait on servers and subprocesses, and every server they start listens on a port of its own.
PARALLEL := -n 2 --dist worksteal

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	@$(call quietly,$(BIN)/python -m pip install --quiet --upgrade pip)

$(RUN_STAMP): $(PACKAGE_INPUTS) | $(BIN)/python
	@echo "installing requence-exporter and its dependencies into $(VENV) (log: $(PIP_LOG))"
	@$(call quietly,$(BIN)/python -m pip install --quiet .)
	@touch $@

# Installs the package too, so the package stamp is current after it.
$(STAMP): pyproject.toml setup.py | $(BIN)/python
	@echo "installing requence-exporter with its test, lint, bench and release tools into $(VENV)"
	@$(call quietly,$(BIN)/python -m pip install --quiet '$(DEV_EXTRAS)')
	@touch $(RUN_STAMP) $@

## Run the exporter against the built-in simulator and print where to look.
demo: $(RUN_STAMP)
	$(BIN)/requence-exporter demo --listen $(LISTEN)

## Install the external tools the tests use (Prometheus, amtool, Chromium) when they can be had.
tools:
	@./scripts/ensure-tools

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench grafana scripts scripts/build-dist setup.py
	$(BIN)/ruff format --check exporter tests bench grafana scripts scripts/build-dist setup.py
	$(BIN)/mypy
	$(BIN)/python grafana/build.py --check

$(DIST)/.built: $(STAMP) $(PACKAGE_INPUTS) scripts/build-dist
	./scripts/build-dist $(BIN)/python $(DIST)
	touch $@

$(COMPILED)/.built: $(DIST)/.built $(COMPILED_INPUTS)
	./scripts/compiled-tree $(BIN)/python $(COMPILED) $(wildcard $(DIST)/compiled/*.whl)
	touch $@

## The quick loop while editing: lint, then the tests not marked slow against the source tree.
check: lint $(STAMP) $(RUN_STAMP) tools
	$(BIN)/python -m pytest -q $(PARALLEL) -m "not slow" --ignore=tests/test_packaging.py

## Every test, against the pure-Python source and against the compiled build, and the release
## rehearsed.
test: lint test-pure test-compiled release-check

# The package stamp too: tests/test_doc_commands.py runs `make demo` with this venv.
test-pure: $(STAMP) $(RUN_STAMP) tools
	$(BIN)/python -m pytest -q $(PARALLEL) --ignore=tests/test_packaging.py

test-compiled: $(COMPILED)/.built tools
	cd $(COMPILED) && REQUENCE_EXPORTER_EXPECT_COMPILED=1 \
		$(CURDIR)/$(BIN)/python -m pytest -q $(PARALLEL) -p no:cacheprovider $(NOT_RUNTIME)

## The release rehearsed: the sdist, both wheels built from it alone in a bare venv as the release
## workflow builds them, each installed in a bare venv of its own and run (tests/test_packaging.py).
release-check: $(DIST)/.built
	REQUENCE_EXPORTER_DIST=$(DIST) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_packaging.py

## The runtime tests against an installed wheel (INSTALLED_PYTHON has it and the test needs),
## in a copy of the tree without exporter/: the release workflow runs it on every wheel.
test-installed:
	./scripts/installed-tests $(INSTALLED_PYTHON) $(NOT_RUNTIME)

## The benchmark: the floors and both builds (the source as `pip install .` installs it, and the
## compiled tree the image ships), bulk and trickle, in one run; bench-pure: the source alone.
BENCH_TREES := --tree pure=$(CURDIR) --tree compiled=$(CURDIR)/$(COMPILED)
bench: $(COMPILED)/.built
	$(BIN)/python -m bench $(BENCH_TREES) --out $(CURDIR)/bench/results

bench-pure: $(STAMP)
	$(BIN)/python -m bench

## Where the stream path spends its CPU, per build, at bulk and at the trickle: the benchmark's
## readers sampled (pure: py-spy, needs ptrace; compiled: perf), summarised under docs/performance/.
profiles: $(COMPILED)/.built
	$(BIN)/python -m bench.profiles $(BENCH_TREES) --out $(CURDIR)/docs/performance

## The framing prototype (bench/prototype.py, never shipped): SSE framing and field reading in one
## C pass, against the floor and the exporter; in one process for each build, over loopback (pure).
bench-prototype: $(COMPILED)/.built
	$(BIN)/python -m bench.prototype
	cd $(COMPILED) && $(CURDIR)/$(BIN)/python -m bench.prototype
	$(BIN)/python -m bench.prototype --loopback

## The benchmark at tiny sizes (seconds): proves the harness runs, measures nothing.
bench-smoke: $(COMPILED)/.built
	$(BIN)/python -m bench --smoke $(BENCH_TREES) --out $(CURDIR)/build/bench-smoke

## What the alert rules cost Prometheus: samples per evaluation and per minute at 6 h and 28 d,
## for 10 and 100 task names on 3 instances, and the rule groups' evaluation times (bench/rules.py).
bench-rules: $(STAMP) tools
	$(BIN)/python -m bench.rules --chart --out $(CURDIR)/bench/results/rules.json

## Regenerate the committed Grafana dashboards from grafana/build.py.
dashboards: $(STAMP)
	$(BIN)/python grafana/build.py && PYTHON=$(BIN)/python scripts/sync-chart-files

clean:
	rm -rf $(VENV) $(COMPILED) .mypy_cache .ruff_cache .pytest_cache
