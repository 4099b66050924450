"""The committed dashboards: current with build.py, portable, described, linked to traces."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.metrics.alerting.rule_groups import render_rules
from exporter.metrics.alerting.rules import DEFAULT_THRESHOLDS
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
    "requence_tasks_oldest_in_progress_start_timestamp_seconds",
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
    if uid != "requence-exporter":  # the exporter's health has no task names or traces
        assert (variables["traces"]["type"], variables["traces"]["query"]) == (
            "datasource",
            "tempo",
        )
    for name in ("job", "task_name") if uid != "requence-exporter" else ("job",):
        var = variables[name]
        assert var["type"] == "query"
        assert var["multi"]
        assert var["includeAll"]
        assert var["definition"].startswith("label_values(")
    # All = the jobs listed (those with build_info), never `.*`: every job Prometheus scrapes.
    assert variables["job"]["allValue"] is None
    assert "requence_exporter_build_info" in variables["job"]["definition"]


@pytest.mark.parametrize("uid", EXPECTED)
def test_every_variable_is_used(uid: str) -> None:
    dashboard = _load(uid)
    body = json.dumps(dashboard["panels"]) + json.dumps(
        [v.get("definition", "") for v in dashboard["templating"]["list"]]
    )
    for var in dashboard["templating"]["list"]:
        assert f"${var['name']}" in body or f"${{{var['name']}" in body, var["name"]


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
def test_exemplars_are_asked_for_exactly_where_the_exporter_attaches_them(uid: str) -> None:
    """Task and node durations carry trace ids; the lag histogram and counters do not."""
    targets = [t for panel in _panels(_load(uid)) for t in panel["targets"]]
    with_exemplars = [
        t
        for t in targets
        if re.search(r"requence_(task|node)_duration_seconds_bucket", t["expr"])
        and not t["instant"]
    ]
    assert all(t["exemplar"] for t in with_exemplars)
    assert not any(t["exemplar"] for t in targets if t not in with_exemplars)
    if uid != "requence-exporter":
        assert with_exemplars


@pytest.mark.parametrize("uid", EXPECTED)
def test_per_instance_stats_are_instant_queries(uid: str) -> None:
    """A range query's last value keeps a tile for a pod replaced hours ago."""
    for panel in _panels(_load(uid)):
        if panel["type"] != "stat":
            continue
        for t in panel["targets"]:
            if not re.match(r"^\s*(sum|count)\b", t["expr"]) or "by (" in t["expr"]:
                assert t["instant"], panel["title"]


@pytest.mark.parametrize("uid", EXPECTED)
def test_windows_do_not_change_with_zoom(uid: str) -> None:
    """Counts over $__rate_interval overlap at a smaller step; one heatmap, never repeated."""
    for panel in _panels(_load(uid)):
        assert "repeat" not in panel, panel["title"]
        for t in panel["targets"]:
            assert not re.search(r"increase\([^\]]*\[\$__rate_interval\]", t["expr"]), panel[
                "title"
            ]
            if "increase(" in t["expr"]:  # a count for a table: over the range, whole
                assert t["instant"], panel["title"]
                assert "[$__range]" in t["expr"], panel["title"]
                assert re.search(r"\bround\(", t["expr"]), panel["title"]
    heatmaps = [p for d in EXPECTED for p in _panels(_load(d)) if p["type"] == "heatmap"]
    assert len(heatmaps) == 1
    assert "rate(" in heatmaps[0]["targets"][0]["expr"]


@pytest.mark.parametrize("uid", EXPECTED)
def test_no_alert_threshold_is_copied_into_a_dashboard(uid: str) -> None:
    """The chart sets the rules' thresholds; a copy in the JSON would show the old value."""
    rules = {v for v in DEFAULT_THRESHOLDS.values() if type(v) in (int, float)}
    for panel in _panels(_load(uid)):
        defaults = panel["fieldConfig"]["defaults"]
        style = defaults.get("custom", {}).get("thresholdsStyle", {"mode": "off"})
        assert style["mode"] == "off", panel["title"]
        steps = defaults.get("thresholds", {}).get("steps", [])
        assert not {s["value"] for s in steps} & rules, panel["title"]


def test_node_trace_links_keep_to_the_task_name() -> None:
    links = [
        link
        for panel in _panels(_load("requence-nodes"))
        for link in panel["fieldConfig"]["defaults"].get("links", [])
    ]
    assert links
    for link in links:
        query = urllib.parse.unquote(link["url"])
        assert "span.requence.task.name" in query
        assert "${__field.labels.task_name}" in query


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
