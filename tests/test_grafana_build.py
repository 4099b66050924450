"""The committed dashboards: current with build.py, portable, described, linked to traces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.alerting.rules import render_rules
from grafana import build
from grafana.build import main, rendered_files

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
EXPECTED = {
    "requence-tasks": "Requence / Tasks",
    "requence-nodes": "Requence / Nodes",
    "requence-exporter": "Requence exporter",
}
# The metric names of the exporter's contract (design.md), plus Prometheus' own `up`.
CONTRACT = {
    "up",
    "requence_tasks_started_total",
    "requence_tasks_ended_total",
    "requence_tasks_errored_total",
    "requence_tasks_aborted_total",
    "requence_nodes_started_total",
    "requence_nodes_ended_total",
    "requence_nodes_errored_total",
    "requence_nodes_deferred_total",
    "requence_node_updates_total",
    "requence_task_duration_seconds_bucket",
    "requence_node_duration_seconds_bucket",
    "requence_tasks_in_progress",
    "requence_nodes_in_progress",
    *(
        f"requence_exporter_{name}"
        for name in (
            "updates_total",
            "updates_skipped_total",
            "incomplete_tasks_total",
            "evicted_tasks_total",
            "tracked_tasks",
            "stream_connected",
            "reconnects_total",
            "stream_position",
            "last_update_timestamp_seconds",
            "update_lag_seconds_bucket",
            "label_overflow_total",
            "spans_exported_total",
            "spans_dropped_total",
            "build_info",
            "negative_durations_total",
        )
    ),
}
_METRIC = re.compile(r"\b(?:[a-z_]+:)?requence_[a-z0-9_:]+|\bup\b")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARD_DIR / f"{name}.json").read_text("utf-8"))
    return data


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_committed_files_are_current() -> None:
    for path, text in rendered_files().items():
        assert path.read_text(encoding="utf-8") == text, f"{path}: run `python grafana/build.py`"
    assert main(["--check"]) == 0


def test_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "requence-tasks.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(build, "rendered_files", lambda: {stale: "[]\n"})
    monkeypatch.setattr(build, "ROOT", tmp_path)
    assert build.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "{}\n"
    assert build.main([]) == 0
    assert stale.read_text(encoding="utf-8") == "[]\n"


@pytest.mark.parametrize(("uid", "title"), EXPECTED.items())
def test_dashboard_identity_and_variables(uid: str, title: str) -> None:
    dashboard = _load(uid)
    assert (dashboard["uid"], dashboard["title"]) == (uid, title)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert (variables["traces"]["type"], variables["traces"]["query"]) == ("datasource", "tempo")
    for name in ("job", "task_name"):
        var = variables[name]
        assert var["type"] == "query"
        assert var["multi"]
        assert var["includeAll"]
        assert var["definition"].startswith("label_values(")


@pytest.mark.parametrize("uid", EXPECTED)
def test_no_hard_coded_datasource(uid: str) -> None:
    dashboard = _load(uid)
    refs = [node["datasource"] for node in _walk(dashboard) if "datasource" in node]
    assert refs
    assert all(ref == {"type": "prometheus", "uid": "${datasource}"} for ref in refs), refs
    uids = [node["uid"] for node in _walk(dashboard) if "uid" in node]
    assert sorted(uids) == sorted([uid] + ["${datasource}"] * len(refs))


@pytest.mark.parametrize("uid", EXPECTED)
def test_panels_have_ids_descriptions_and_units(uid: str) -> None:
    dashboard = _load(uid)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        assert panel["description"], panel["title"]
        unit = panel["fieldConfig"]["defaults"].get("unit") or panel["options"]["yAxis"]["unit"]
        assert unit, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"]


@pytest.mark.parametrize("uid", EXPECTED)
def test_latency_panels_show_exemplars(uid: str) -> None:
    latency = [
        t
        for panel in _panels(_load(uid))
        for t in panel["targets"]
        if "histogram_quantile" in t["expr"] and not t["instant"]
    ]
    assert latency
    assert all(t["exemplar"] for t in latency)


def test_duration_by_name_panels_link_to_traces() -> None:
    for uid in ("requence-tasks", "requence-nodes"):
        links = [
            link
            for panel in _panels(_load(uid))
            for link in panel["fieldConfig"]["defaults"].get("links", [])
        ]
        assert links, uid
        assert all("%24%7Btraces%7D" in link["url"] or "${traces}" in link["url"] for link in links)


@pytest.mark.parametrize("uid", EXPECTED)
def test_queries_use_only_contract_metrics_and_recorded_rules(uid: str) -> None:
    recorded = {
        r["record"] for g in render_rules({})["groups"] for r in g["rules"] if "record" in r
    }
    exprs = [t["expr"] for panel in _panels(_load(uid)) for t in panel["targets"]]
    used = {m for expr in exprs for m in _METRIC.findall(expr)}
    assert used
    assert used <= CONTRACT | recorded, used - CONTRACT - recorded
