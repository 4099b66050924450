"""Start-up stays cheap: `--version` and `rules` load none of the libraries only `run` needs.

Measured by what is imported, not by time: `-X importtime` lists every module a command loads,
the same on every run, however loaded the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.process import ROOT

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
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "exporter", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first is the header


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
