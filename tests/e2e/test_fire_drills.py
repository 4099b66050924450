"""Fire drills against a real Prometheus: each incident raises its alert, normal traffic none.

Six demos run side by side (`demo --incident NAME`, and one without an incident), each scraped
every second as its own job by one Prometheus that evaluates the rules of `requence-exporter
rules` with every window shortened (the SLO windows by about 60x) and scoped to the drill jobs.
Before it starts, half an hour of each demo's normal work is backfilled as the base rates the
SLO rules record (tests/e2e/drill_history.py), so every window is full of healthy history when
an incident begins, as in a cluster that has run for weeks: the measured time to page is what
users get, at 1/60 scale. Each test waits for its incident's alert in Prometheus' alerts API and
records how long after the incident started it fired; the normal demo must fire no critical
alert over the same time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from exporter.simulator.incidents import INCIDENTS, LATENCY_OBJECTIVE
from tests.e2e.drill_history import history_rates, write_history
from tests.e2e.prometheus import (
    SLO_DASHBOARD,
    http_get,
    instant_query,
    panels,
    start_prometheus,
    stop,
    substitute,
    wait_ready,
)
from tests.helpers import free_port
from tests.tools import require_tool

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INCIDENT_AFTER_S = 20.0
# Healthy history before the live run: at least the drill's SLO window (30m).
HISTORY_S = 1800
# The drills' latency objective: image-resize within 1s (LATENCY_OBJECTIVE).
SLOW = {"image-resize": 1.0}
# From the incident's start until its alert must be firing; the measured times are well below.
ALERT_BOUND_S = 150.0
POLL_S = 0.5
NORMAL = "normal"
# How long after the others' incidents start the normal demo is watched, at least.
NORMAL_WATCH_S = 60.0
# The Workbook's windows scaled down about 60x (1h -> 1m), the `for`s and the other alerts'
# windows likewise, so a drill takes a minute or two instead of hours.
SHORT_WINDOWS = {
    # The Workbook's factors kept as they are (a 30m SLO window would scale them down).
    "slo_page_fast_burn_rate": "14.4",
    "slo_page_slow_burn_rate": "6",
    "slo_ticket_fast_burn_rate": "3",
    "slo_ticket_slow_burn_rate": "1",
    "slo_window": "30m",
    "slo_interval": "1s",
    "slo_long_interval": "5s",
    "slo_window_interval": "5s",
    "slo_page_fast_long_window": "1m",
    "slo_page_fast_short_window": "10s",
    "slo_page_fast_for": "5s",
    "slo_page_slow_long_window": "3m",
    "slo_page_slow_short_window": "30s",
    "slo_page_slow_for": "10s",
    "slo_ticket_fast_long_window": "5m",
    "slo_ticket_fast_short_window": "1m",
    "slo_ticket_fast_for": "30s",
    "slo_ticket_slow_long_window": "10m",
    "slo_ticket_slow_short_window": "3m",
    "slo_ticket_slow_for": "1m",
    "task_abort_for": "10s",
    "tasks_stuck_window": "30s",
    "tasks_stuck_for": "10s",
    "exporter_disconnected_for": "10s",
    "exporter_job_regex": "drill-.*",
}


class Drill(NamedTuple):
    """One demo process: its job name, address, log, and the monotonic time it was started."""

    job: str
    address: str
    log: Path
    started: float


class Rig(NamedTuple):
    """The running drills and the Prometheus evaluating their rules."""

    prometheus: str
    drills: dict[str, Drill]
    rules: Path


def _render_rules(path: Path) -> None:
    args = [sys.executable, "-m", "exporter", "rules", "--latency", LATENCY_OBJECTIVE]
    for key, value in SHORT_WINDOWS.items():
        args += ["--set", f"{key}={value}"]
    text = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """Start the six demos and Prometheus; stop them all afterwards."""
    require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("drills")
    rules = workdir / "alerts.yml"
    _render_rules(rules)
    window = int(SHORT_WINDOWS["slo_page_fast_short_window"].removesuffix("s"))
    # Every demo runs the same seeded workload (time scale 0.1) until its incident starts.
    rates = history_rates(time_scale=0.1, seconds=HISTORY_S, window=window, slow=SLOW)
    history = workdir / "history.om"
    end = time.time()
    with history.open("w", encoding="utf-8") as out:
        for name in [NORMAL, *INCIDENTS]:
            write_history(out, rates, job=f"drill-{name}", seconds=HISTORY_S, end=end)
        out.write("# EOF\n")
    subprocess.run(
        [
            require_tool("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(history),
            str(workdir / "data"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    procs: list[subprocess.Popen[bytes]] = []
    drills: dict[str, Drill] = {}
    try:
        for name in [NORMAL, *INCIDENTS]:
            address = f"127.0.0.1:{free_port()}"
            log = workdir / f"{name}.log"
            args = [sys.executable, "-m", "exporter", "demo", "--listen", address]
            if name != NORMAL:
                args += ["--incident", name, "--incident-after", str(INCIDENT_AFTER_S)]
            with log.open("wb") as out:
                proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            procs.append(proc)
            drills[name] = Drill(f"drill-{name}", address, log, time.monotonic())
            wait_ready(f"http://{address}/metrics", proc, log)
        proc, url = start_prometheus(
            workdir, {drill.job: [drill.address] for drill in drills.values()}, rules
        )
        procs.append(proc)
        yield Rig(url, drills, rules)
    finally:
        for proc in reversed(procs):
            stop(proc)


def _firing(prometheus: str) -> list[dict[str, Any]]:
    status, body = http_get(f"{prometheus}/api/v1/alerts")
    assert status == 200, body
    alerts: list[dict[str, Any]] = json.loads(body)["data"]["alerts"]
    return [alert for alert in alerts if alert["state"] == "firing"]


def _critical(alerts: list[dict[str, Any]], job: str) -> list[str]:
    return [
        a["labels"]["alertname"]
        for a in alerts
        if a["labels"].get("job") == job and a["labels"].get("severity") == "critical"
    ]


class Observed(NamedTuple):
    """What the watch saw of one drill, in seconds since it was started."""

    incident_started: float | None
    alert_fired: float | None
    alert_labels: list[dict[str, str]]
    early_pages: list[str]  # critical alerts of the job before its incident started


@pytest.fixture(scope="module")
def observed(rig: Rig) -> dict[str, Observed]:
    """Poll the logs and the alerts API for all drills at once until each alert fired."""
    seen = {name: Observed(None, None, [], []) for name in rig.drills}
    deadline = max(d.started for d in rig.drills.values()) + INCIDENT_AFTER_S + ALERT_BOUND_S
    normal_until = rig.drills[NORMAL].started + INCIDENT_AFTER_S + NORMAL_WATCH_S
    while time.monotonic() < deadline:
        alerts = _firing(rig.prometheus)
        now = time.monotonic()
        for name, drill in rig.drills.items():
            state = seen[name]
            if name == NORMAL:
                early = state.early_pages + _critical(alerts, drill.job)
                seen[name] = state._replace(early_pages=early)
                continue
            if state.incident_started is None:
                seen[name] = state._replace(early_pages=_critical(alerts, drill.job))
                if b"fire drill started" in drill.log.read_bytes():
                    seen[name] = seen[name]._replace(incident_started=now - drill.started)
                continue
            incident = INCIDENTS[name]
            mine = [
                a["labels"]
                for a in alerts
                if a["labels"]["alertname"] == incident.alert
                and a["labels"].get("job") == drill.job
                # With windows this short, a rare long task name can look stuck too: what
                # counts is that the incident's own task name is caught.
                and a["labels"].get("task_name", "") == incident.task_name
            ]
            if mine and state.alert_fired is None:
                seen[name] = state._replace(alert_fired=now - drill.started, alert_labels=mine)
        done = all(o.alert_fired is not None for n, o in seen.items() if n != NORMAL)
        if done and time.monotonic() >= normal_until:
            break
        time.sleep(POLL_S)
    return seen


@pytest.mark.parametrize("name", list(INCIDENTS))
def test_incident_fires_its_alert(observed: dict[str, Observed], name: str) -> None:
    incident = INCIDENTS[name]
    seen = observed[name]
    assert seen.incident_started is not None, f"{name}: the incident never started"
    assert not seen.early_pages, f"{name}: paged before the incident: {seen.early_pages}"
    assert seen.alert_fired is not None, (
        f"{name}: {incident.alert} not firing within {ALERT_BOUND_S:.0f}s of the incident"
    )
    took = seen.alert_fired - seen.incident_started
    print(f"\n{name}: {incident.alert} firing {took:.0f}s after the incident started")


def test_normal_demo_pages_nobody(rig: Rig, observed: dict[str, Observed]) -> None:
    """Over as long as the drills take, the normal workload raises no critical alert."""
    assert not observed[NORMAL].early_pages
    query = urllib.parse.urlencode(
        {"query": "task_name:requence_slo_error_burn_rate:page_fast_long"}
    )
    status, body = http_get(f"{rig.prometheus}/api/v1/query?{query}")
    assert status == 200
    jobs = {r["metric"]["job"] for r in json.loads(body)["data"]["result"]}
    assert rig.drills[NORMAL].job in jobs, "the SLO rules never judged the normal demo's tasks"


def _slo_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((ROOT / "grafana" / "dashboards" / SLO_DASHBOARD).read_text())
    values = {"cluster": ".*", "namespace": ".*", "job": "drill-.*", "task_name": ".*"}
    return [
        (f"{panel['title']}:{t['refId']}", substitute(t["expr"], values))
        for panel in panels(dashboard["panels"])
        for t in panel.get("targets", [])
    ]


SLO_QUERIES = _slo_queries()


@pytest.mark.parametrize(("name", "expr"), SLO_QUERIES, ids=[name for name, _ in SLO_QUERIES])
def test_slo_dashboard_query_returns_data(
    rig: Rig, observed: dict[str, Observed], name: str, expr: str
) -> None:
    """Each SLO panel query returns series from the drills' rules (latency SLO included)."""
    answer = instant_query(rig.prometheus, expr)
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    assert answer["data"]["result"], f"no data for {name}: {expr}"


def test_the_incidents_start_after_half_an_hour_of_healthy_history(
    rig: Rig, observed: dict[str, Observed]
) -> None:
    """Every drill's SLO windows hold the backfilled half hour, not only the live minutes."""
    expr = (
        "min(count_over_time(task_name:requence_slo_error_events:rate_base"
        f'{{job=~"drill-.*", task_name="image-resize"}}[{HISTORY_S + 600}s]))'
    )
    answer = instant_query(rig.prometheus, expr)
    assert answer["status"] == "success", answer
    [sample] = answer["data"]["result"]
    assert float(sample["value"][1]) >= HISTORY_S - 60
