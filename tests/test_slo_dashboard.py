"""The committed "Requence / SLOs" dashboard: built like the others, reading the SLO rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from exporter.metrics.alerting.objectives import RuleConfig, latency_objective
from exporter.metrics.alerting.render import render

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "grafana" / "dashboards" / "requence-slos.json"
CHART_COPY = ROOT / "helm" / "requence-exporter" / "files" / "dashboards" / "requence-slos.json"
_NAME = re.compile(r"\b[a-z_]+:requence_[a-z0-9_:]+")


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PATH.read_text(encoding="utf-8"))
    return data


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def test_identity_variables_and_chart_copy() -> None:
    dashboard = _dashboard()
    assert (dashboard["uid"], dashboard["title"]) == ("requence-slos", "Requence / SLOs")
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "cluster", "namespace", "job", "task_name"} <= names
    assert CHART_COPY.read_bytes() == PATH.read_bytes()


def test_queries_read_only_recorded_slo_series() -> None:
    config = RuleConfig(latency={"x": latency_objective("x", "1s", 0.9)})
    recorded = {r["record"] for g in render(config)["groups"] for r in g["rules"] if "record" in r}
    exprs = [t["expr"] for panel in _panels() for t in panel["targets"]]
    used = {m for expr in exprs for m in _NAME.findall(expr)}
    assert used
    assert used <= recorded, used - recorded
    assert all('namespace=~"$namespace", job=~"$job"' in expr for expr in exprs)
    refs = [t["datasource"] for panel in _panels() for t in panel["targets"]]
    assert all(ref == {"type": "prometheus", "uid": "${datasource}"} for ref in refs)


def test_tables_sort_worst_first_link_to_tasks_and_name_the_alert() -> None:
    tables = [p for p in _panels() if p["type"] == "table"]
    assert len(tables) == 2
    for table in tables:
        assert table["options"]["sortBy"] == [{"desc": False, "displayName": "Budget left"}]
        columns = set(table["transformations"][1]["options"]["renameByName"].values())
        assert {"SLI", "Budget left", "Budget runs out in", "Alert", "Can page"} <= columns
        assert {"Burn rate, fast page window", "Burn rate, slow page window"} <= columns
        links = [
            link
            for o in table["fieldConfig"]["overrides"]
            for prop in o["properties"]
            if prop["id"] == "links"
            for link in prop["value"]
        ]
        assert links
        assert all(link["url"].startswith("/d/requence-tasks/") for link in links)
        for var in ("cluster", "namespace", "job", "task_name"):
            assert all(f"var-{var}=${{__data.fields.{var}}}" in link["url"] for link in links)


def test_no_configuration_is_copied_in_only_recorded_parameters() -> None:
    """Factors, windows and the guard come from the rules' parameter series: the text of the
    dashboard names no window or factor of the defaults."""
    text = PATH.read_text(encoding="utf-8")
    for literal in ("14.4", '"1h"', " 1h ", "over 1h", "28d", "2419200", ">= 20"):
        assert literal not in text, literal
    exprs = [t["expr"] for panel in _panels() for t in panel["targets"]]
    assert any("job:requence_slo_burn_rate_threshold:constant" in e for e in exprs)
    assert any("job:requence_slo_min_events:constant" in e for e in exprs)
    assert any("ALERTS{" in e for e in exprs)


def test_every_panel_is_described_and_has_a_unit() -> None:
    for panel in _panels():
        assert panel["description"], panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_the_tasks_error_ratio_divides_as_the_slo_does_and_says_so() -> None:
    tasks = json.loads((PATH.parent / "requence-tasks.json").read_text(encoding="utf-8"))
    panels = {p["title"]: p for p in tasks["panels"] if p["type"] != "row"}
    ratio = panels["Error ratio"]
    [expr] = [t["expr"] for t in ratio["targets"]]
    assert "requence_tasks_aborted_total" not in expr
    assert "ended + errored" in ratio["description"]
    alerting = panels["Error ratio by task name (alerting view)"]
    assert "ended + errored" in alerting["description"]
    assert "RequenceTaskErrorBudgetBurn" in alerting["description"]
