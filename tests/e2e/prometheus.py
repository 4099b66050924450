"""A real Prometheus for the tests: started on loopback, queried over its HTTP API, stopped.

Also what the tests read of the committed dashboards: their panels, and their queries with the
template variables filled in as Grafana fills them with "All" selected.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import free_port
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
# The SLO dashboard needs rules with a latency objective: tests/e2e/test_fire_drills.py runs it.
SLO_DASHBOARD = "requence-slos.json"
DASHBOARDS = sorted(
    p for p in (ROOT / "grafana" / "dashboards").glob("*.json") if p.name != SLO_DASHBOARD
)
RULES = ROOT / "grafana" / "alerts.yml"
JOB = "requence-exporter"
START_TIMEOUT_S = 30.0
POLL_S = 0.5
# Grafana's built-in variables, as it would fill them for a short time range.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """A dashboard's template variables as Grafana fills them: the job, "All" for the rest."""
    values = dict(BUILTINS)
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            values[var["name"]] = JOB if var["name"] == "job" else var["allValue"]
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """`expr` with every `$name` and `${name}` replaced; an unknown variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET; (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback URL)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `url` answers 200; fail with the process's log if it exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        if http_get(url)[0] == 200:
            return
        time.sleep(POLL_S)
    pytest.fail(f"{url} did not answer within {START_TIMEOUT_S}s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after ten seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_prometheus(
    workdir: Path,
    jobs: dict[str, list[str]],
    rules: Path = RULES,
    labels: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """A ready Prometheus scraping each job's targets every second, evaluating `rules` every
    second; returns the process (stop it with `stop`) and its base URL."""
    binary = require_tool("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets, "labels": labels or {}}]}
            for job, targets in jobs.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [binary, f"--config.file={workdir / 'prometheus.yml'}"]
    return start_server([*argv, f"--storage.tsdb.path={workdir / 'data'}"], workdir, "prometheus")


def start_server(argv: list[str], workdir: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a Prometheus or an Alertmanager (`argv` and `--web.listen-address` on a free
    loopback port) in `workdir`, its output in `<name>.log` there; returns the process and its
    base URL once /-/ready answers, or fails with the log (the process stopped)."""
    address = f"127.0.0.1:{free_port()}"
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, f"--web.listen-address={address}"],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://{address}/-/ready", proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc, f"http://{address}"


def instant_query(base: str, expr: str) -> dict[str, Any]:
    """The JSON answer of /api/v1/query for `expr` (status, data or error)."""
    status, body = http_get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    if not body:
        return {"status": "error", "error": f"HTTP {status} without a body"}
    answer: dict[str, Any] = json.loads(body)
    return answer
