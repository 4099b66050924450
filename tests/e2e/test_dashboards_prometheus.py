"""Every dashboard query and every rule works against a real Prometheus scraping the demo.

Starts `python -m exporter demo`, a Prometheus that scrapes it every second and evaluates
grafana/alerts.yml every second, then runs each panel query (template variables filled in as
Grafana would with "All" selected) and each variable query through the HTTP API.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import yaml

from tests.e2e.prometheus import (
    DASHBOARDS,
    JOB,
    POLL_S,
    ROOT,
    RULES,
    http_get,
    instant_query,
    panels,
    start_prometheus,
    stop,
    substitute,
    variable_values,
    wait_ready,
)
from tests.helpers import free_port

pytestmark = pytest.mark.slow

DATA_TIMEOUT_S = 60.0
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)


class Query(NamedTuple):
    """One query of a dashboard, with template variables already substituted."""

    name: str
    expr: str
    label: str | None  # for variable queries: the label whose values must exist


def dashboard_queries() -> list[Query]:
    """Every panel target and variable query of the committed dashboards."""
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        values = variable_values(dashboard)
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = _LABEL_VALUES.match(var["definition"])
            assert match, f"{path.name}: variable {var['name']} is not a label_values query"
            queries.append(
                Query(
                    f"{path.stem}:${var['name']}",
                    substitute(match.group(1), values),
                    match.group(2),
                )
            )
        for panel in panels(dashboard["panels"]):
            for t in panel.get("targets", []):
                name = f"{path.stem}:{panel['title']}:{t['refId']}"
                queries.append(Query(name, substitute(t["expr"], values), None))
    return queries


def rule_expressions() -> list[tuple[str, str]]:
    """(name, expression) of every recording and alerting rule in grafana/alerts.yml."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [
        (rule.get("record") or rule["alert"], rule["expr"])
        for group in doc["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The exporter demo (simulator + exporter) serving /metrics; yields host:port."""
    address = f"127.0.0.1:{free_port()}"
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
        wait_ready(f"http://{address}/metrics", proc, log)
        yield address
    finally:
        stop(proc)


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
        stop(proc)


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
        status, body = http_get(f"{prometheus}/api/v1/rules")
        assert status == 200
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        if {r["name"] for r in rules} == expected and all(r.get("health") == "ok" for r in rules):
            break
        time.sleep(POLL_S)
    assert {r["name"] for r in rules} == expected
    unhealthy = {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok"}
    assert not unhealthy
