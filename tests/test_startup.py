"""Start-up stays cheap: `--version` and `rules` load none of the libraries only `run` needs,
and no more of the exporter's own modules than their budget.

Measured by what is imported, not by time: `-X importtime` lists every module a command loads,
the same on every run, however loaded the machine.
"""

from __future__ import annotations

import importlib.util
import sys
from fnmatch import fnmatchcase

import pytest

from tests.e2e.process import run_python

# What only `run` needs: the OpenTelemetry SDK and gRPC (OTLP), httpx (the stream), the
# Prometheus client (process metrics), protobuf (spans), and the modules that run the stream.
RUN_ONLY = (
    "opentelemetry",
    "grpc",
    "google.protobuf",
    "httpx",
    "prometheus_client",
    "exporter.app",
    "exporter.requence.stream",
    "exporter.metrics.store",
    "exporter.metrics.otlp_push",
    "exporter.traces.sink",
)
# `--version` reads no rule configuration either.
VERSION_ONLY_NOT = (*RUN_ONLY, "yaml")


def imported(*args: str) -> set[str]:
    """The modules `python -m exporter ARGS` imports, read from `-X importtime`."""
    done = run_python("-X", "importtime", "-m", "exporter", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = [line.rsplit("|", 1)[1].strip() for line in lines[1:]]  # the first is the header
    return set(names[names.index("site") + 1 :])  # after the interpreter's own start-up


# The exporter's own top-level modules: the package and, in the compiled build, the shared
# library of its compiled modules (setup.py's mypyc group).
OWN_TOPS = {"exporter", "requence_exporter__mypyc"}


def libraries(modules: set[str]) -> set[str]:
    """The installed packages outside the standard library among `modules` (an import tried
    and failed, such as `copy`'s probe for Jython's `org.python.core`, is none)."""
    tops = {m.split(".")[0] for m in modules} - OWN_TOPS
    return {t for t in tops - sys.stdlib_module_names if importlib.util.find_spec(t)}


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(
        m for m in modules if m.startswith(tuple(f"{p}." for p in packages)) or m in packages
    )


@pytest.mark.parametrize(
    ("args", "never"), [(["--version"], VERSION_ONLY_NOT), (["rules"], RUN_ONLY)]
)
def test_a_command_that_does_not_run_loads_nothing_only_run_needs(
    args: list[str], never: tuple[str, ...]
) -> None:
    modules = imported(*args)
    assert "exporter.cli" in modules  # the listing is read right
    assert loaded(modules, never) == []


# The budget, measured with `-X importtime` (`--version`: 40 of the exporter's modules, `rules`:
# 41): building the command line reads every command's options, so both load the settings, the
# rule generator and the fire drills' incidents (which load the simulator). Of the libraries,
# orjson and h11 (the simulator's HTTP), and for `rules` the YAML it may read and write.
OWN_MODULES = 45
OWN_PARTS = (
    "exporter",
    "exporter.cli",
    "exporter.config",
    "exporter.core",
    "exporter.core.*",
    "exporter.metrics",
    "exporter.metrics.alerting",
    "exporter.metrics.alerting.*",
    "exporter.metrics.families",
    "exporter.metrics.exposition",
    "exporter.requence",
    "exporter.requence.credentials",
    "exporter.requence.token",
    "exporter.serving",
    "exporter.serving.http_*",
    "exporter.simulator",
    "exporter.simulator.*",
    "exporter.traces",
    "exporter.traces.otlp_config",
)
LIBRARIES = {"--version": {"orjson", "h11"}, "rules": {"orjson", "h11", "yaml"}}


@pytest.mark.parametrize("command", ["--version", "rules"])
def test_a_command_that_does_not_run_stays_within_its_budget(command: str) -> None:
    modules = imported(command)
    own = {m for m in modules if m == "exporter" or m.startswith("exporter.")}
    assert "exporter.cli" in own  # the listing is read right
    outside = sorted(m for m in own if not any(fnmatchcase(m, p) for p in OWN_PARTS))
    assert outside == [], "a new module on the command line's path: import it where it is used"
    assert len(own) <= OWN_MODULES, sorted(own)
    assert libraries(modules) <= LIBRARIES[command]
