"""Every dashboard query and every rule works against a real Prometheus scraping the demo.

Starts `python -m exporter demo`, a Prometheus that scrapes it every second and evaluates
grafana/alerts.yml every second, then runs each panel query (template variables filled in as
Grafana would with "All" selected) and each variable query through the HTTP API.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from tests.tools import require_tool

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The SLO dashboard needs rules with a latency objective: tests/e2e/test_fire_drills.py runs it.
SLO_DASHBOARD = "requence-slos.json"
DASHBOARDS = sorted(
    p for p in (ROOT / "grafana" / "dashboards").glob("*.json") if p.name != SLO_DASHBOARD
)
RULES = ROOT / "grafana" / "alerts.yml"
JOB = "requence-exporter"
START_TIMEOUT_S = 30.0
DATA_TIMEOUT_S = 60.0
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
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)


class Query(NamedTuple):
    """One query of a dashboard, with template variables already substituted."""

    name: str
    expr: str
    label: str | None  # for variable queries: the label whose values must exist


def _variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    values = dict(BUILTINS)
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            values[var["name"]] = JOB if var["name"] == "job" else var["allValue"]
    return values


def _substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> list[Query]:
    """Every panel target and variable query of the committed dashboards."""
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        values = _variable_values(dashboard)
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = _LABEL_VALUES.match(var["definition"])
            assert match, f"{path.name}: variable {var['name']} is not a label_values query"
            queries.append(
                Query(
                    f"{path.stem}:${var['name']}",
                    _substitute(match.group(1), values),
                    match.group(2),
                )
            )
        for panel in _panels(dashboard["panels"]):
            for t in panel.get("targets", []):
                name = f"{path.stem}:{panel['title']}:{t['refId']}"
                queries.append(Query(name, _substitute(t["expr"], values), None))
    return queries


def rule_expressions() -> list[tuple[str, str]]:
    """(name, expression) of every recording and alerting rule in grafana/alerts.yml."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [
        (rule.get("record") or rule["alert"], rule["expr"])
        for group in doc["groups"]
        for rule in group["rules"]
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback URL)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        if _get(url)[0] == 200:
            return
        time.sleep(POLL_S)
    pytest.fail(f"{url} did not answer within {START_TIMEOUT_S}s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The exporter demo (simulator + exporter) serving /metrics; yields host:port."""
    address = f"127.0.0.1:{_free_port()}"
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            # The normal workload keeps task errors under 1 %, too rare to be sure of one in
            # the first minute: a fire drill from the start gives the error panels data.
            [
                *(sys.executable, "-m", "exporter", "demo", "--listen", address),
                *("--incident", "error-spike", "--incident-after", "0"),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(f"http://{address}/metrics", proc, log)
        yield address
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def prometheus(demo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the demo and evaluating the rules; yields its base URL."""
    # The labels the Prometheus Operator (namespace) and external labels (cluster) add.
    labels = {"cluster": "ci", "namespace": "requence"}
    workdir = tmp_path_factory.mktemp("prometheus")
    # The shipped rules with every group evaluated every second, so each has run in a minute.
    rules = workdir / "alerts.yml"
    args = ["--set", "slo_interval=1s", "--set", "slo_long_interval=1s"]
    args += ["--set", "slo_window_interval=1s"]
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "rules", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    rules.write_text(done.stdout, encoding="utf-8")
    proc, url = start_prometheus(workdir, {JOB: [demo]}, rules, labels=labels)
    try:
        yield url
    finally:
        _stop(proc)


def start_prometheus(
    workdir: Path,
    jobs: dict[str, list[str]],
    rules: Path = RULES,
    labels: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """A ready Prometheus scraping each job's targets every second, evaluating `rules` every
    second; returns the process (stop it with `_stop`) and its base URL."""
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
    address = f"127.0.0.1:{_free_port()}"
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={address}",
            ],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(f"http://{address}/-/ready", proc, log)
    except BaseException:
        _stop(proc)
        raise
    return proc, f"http://{address}"


def instant_query(base: str, expr: str) -> dict[str, Any]:
    """The JSON answer of /api/v1/query for `expr` (status, data or error)."""
    status, body = _get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    if not body:
        return {"status": "error", "error": f"HTTP {status} without a body"}
    answer: dict[str, Any] = json.loads(body)
    return answer


@pytest.fixture(scope="module")
def scraped(prometheus: str) -> float:
    """Waits until the demo's metrics have two samples in Prometheus; returns the deadline."""
    deadline = time.monotonic() + DATA_TIMEOUT_S
    expr = f'rate(requence_exporter_updates_total{{job="{JOB}"}}[1m])'
    while time.monotonic() < deadline:
        answer = instant_query(prometheus, expr)
        if answer["status"] == "success" and answer["data"]["result"]:
            return deadline
        time.sleep(POLL_S)
    pytest.fail(f"no rate of the demo's updates within {DATA_TIMEOUT_S}s")


def _has_data(answer: dict[str, Any], label: str | None) -> bool:
    if answer["status"] != "success":
        return False
    result = answer["data"]["result"]
    if label is None:
        return bool(result)
    return any(label in series["metric"] for series in result)


QUERIES = dashboard_queries()


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_dashboard_query_returns_data(prometheus: str, scraped: float, query: Query) -> None:
    """Each panel query returns series once the demo has run (some need finished tasks)."""
    answer = instant_query(prometheus, query.expr)
    # Series that need events (finished tasks, errors, defers) may take a few more seconds
    # of demo traffic; poll until the shared deadline, but at least once.
    while not _has_data(answer, query.label) and time.monotonic() < scraped:
        assert answer["status"] == "success", f"{query.expr}: {answer.get('error')}"
        time.sleep(POLL_S)
        answer = instant_query(prometheus, query.expr)
    assert answer["status"] == "success", f"{query.expr}: {answer.get('error')}"
    assert _has_data(answer, query.label), f"no data for {query.expr}"


RULE_EXPRESSIONS = rule_expressions()


@pytest.mark.parametrize(
    ("name", "expr"), RULE_EXPRESSIONS, ids=[name for name, _ in RULE_EXPRESSIONS]
)
def test_rule_expression_evaluates(prometheus: str, scraped: float, name: str, expr: str) -> None:
    """Each rule expression is valid PromQL that Prometheus evaluates on live data."""
    answer = instant_query(prometheus, expr)
    assert answer["status"] == "success", f"{name}: {answer.get('error')}"


def test_rules_are_loaded_and_healthy(prometheus: str, scraped: float) -> None:
    """Prometheus loaded every rule of alerts.yml and its evaluations report no error."""
    expected = {name for name, _ in RULE_EXPRESSIONS}
    rules: list[dict[str, Any]] = []
    while time.monotonic() < scraped:
        status, body = _get(f"{prometheus}/api/v1/rules")
        assert status == 200
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        if {r["name"] for r in rules} == expected and all(r.get("health") == "ok" for r in rules):
            break
        time.sleep(POLL_S)
    assert {r["name"] for r in rules} == expected
    unhealthy = {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok"}
    assert not unhealthy
