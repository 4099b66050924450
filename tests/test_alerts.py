"""The Prometheus rule file: current with its generator, valid, unit-tested with promtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.metrics.alerting.objectives import RuleConfig, latency_objective
from exporter.metrics.alerting.render import render, rules_text
from exporter.metrics.alerting.rule_groups import render_rules
from exporter.metrics.alerting.rules import DEFAULT_THRESHOLDS, LAG_THRESHOLD_LIMIT
from exporter.metrics.store import Metrics
from grafana.build import rules_yaml
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "grafana" / "alerts.yml"
RULE_TESTS = ROOT / "grafana" / "alerts_test.yml"
SLO_TESTS = ROOT / "grafana" / "slo_test.yml"
OPTIN_TESTS = ROOT / "grafana" / "alerts_optin_test.yml"
DOC = ROOT / "docs" / "dashboards-and-alerts.md"


def _alerts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_committed_rules_are_current() -> None:
    assert RULES.read_text(encoding="utf-8") == rules_yaml(), "run `python grafana/build.py`"


def test_rule_file_parses_to_render() -> None:
    assert yaml.safe_load(RULES.read_text(encoding="utf-8")) == render(RuleConfig())


def test_promtool_check_rules() -> None:
    result = _promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


# The objectives grafana/slo_test.yml is written for (its header says so).
SLO_TEST_CONFIG = RuleConfig(
    objectives={"payments": 0.999},
    latency={name: latency_objective(name, "2.5s", 0.95) for name in ("resize", "crop", "nightly")},
)


@pytest.mark.slow
def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_slo_unit_tests_pass(tmp_path: Path) -> None:
    (tmp_path / "alerts_slo.yml").write_text(rules_text(SLO_TEST_CONFIG), encoding="utf-8")
    (tmp_path / SLO_TESTS.name).write_bytes(SLO_TESTS.read_bytes())
    result = _promtool("test", "rules", tmp_path / SLO_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_opt_in_error_ratio_alert_unit_tests_pass(tmp_path: Path) -> None:
    config = RuleConfig(disabled=[])
    (tmp_path / "alerts_optin.yml").write_text(rules_text(config), encoding="utf-8")
    (tmp_path / OPTIN_TESTS.name).write_bytes(OPTIN_TESTS.read_bytes())
    result = _promtool("test", "rules", tmp_path / OPTIN_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    tests = [
        test
        for path in (RULE_TESTS, SLO_TESTS, OPTIN_TESTS)
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    ]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in _alerts(render(RuleConfig(disabled=[], latency=SLO_TEST_CONFIG.latency))):
        mine = [c for c in cases if c["alertname"] == alert["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{alert['alert']} never fires in a test"
        assert any(not c["exp_alerts"] for c in mine), f"{alert['alert']} is never silent"


def test_alerts_carry_severity_annotations_and_a_documented_runbook() -> None:
    anchors = {
        _github_anchor(line.lstrip("#"))
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for alert in _alerts(render(RuleConfig(disabled=[]))):
        assert alert["labels"]["severity"] in {"critical", "warning"}
        notes = alert["annotations"]
        assert "{{ $value" in notes["summary"] + notes["description"]
        # Every alert says which series it is about (RequenceExporterAbsent when it has a job).
        assert "$labels." in notes["description"]
        url = notes["runbook_url"]
        assert url.startswith(str(DEFAULT_THRESHOLDS["runbook_base_url"]) + "#")
        assert url.split("#", 1)[1] in anchors, f"{DOC.name} lacks a heading for {url}"


def test_thresholds_are_applied_and_still_valid(tmp_path: Path) -> None:
    custom = {
        "task_error_ratio": 0.25,
        "task_error_min_finished": 3,
        "tasks_stuck_window": "2h",
        "exporter_job_regex": "my-exporter",
        "runbook_base_url": "https://runbooks.example.invalid/requence",
    }
    rendered = render_rules(custom)
    by_name = {a["alert"]: a for a in _alerts(rendered)}
    ratio = by_name["RequenceTaskErrorRatioHigh"]
    assert "> 0.25" in ratio["expr"]
    assert ">= 3" in ratio["expr"]
    assert "[2h]" in by_name["RequenceTasksStuck"]["expr"]
    assert 'up{job=~"my-exporter"}' in by_name["RequenceExporterDown"]["expr"]
    assert ratio["annotations"]["runbook_url"].startswith(custom["runbook_base_url"] + "#")
    path = tmp_path / "alerts.yml"
    path.write_text(rules_yaml(custom), encoding="utf-8")
    result = _promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="task_error_ration"):
        render_rules({"task_error_ration": 0.1})


@pytest.mark.parametrize("threshold", [LAG_THRESHOLD_LIMIT, 100_000, -1])
def test_lag_thresholds_the_histogram_cannot_report_are_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"exporter_lag_p95_seconds .* can never fire"):
        render_rules({"exporter_lag_p95_seconds": threshold})
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
    with (
        helm.Chart.load(ROOT / "helm" / "requence-exporter") as chart,
        pytest.raises(helm.HelmValuesError),
    ):
        chart.validate_schema(
            {"prometheusRule": {"thresholds": {"exporter_lag_p95_seconds": threshold}}}
        )


def test_a_lag_alert_above_five_minutes_fires_on_the_exporters_own_histogram(
    tmp_path: Path,
) -> None:
    """A --since replay 1.5 h behind, as the exporter's lag histogram reports it."""
    metrics = Metrics()
    metrics.observe_lags([5400.0] * 10)
    buckets = {
        s.labels["le"]: int(s.value)
        for f in parse_text(metrics.render())
        for s in f.samples
        if s.name == "requence_exporter_update_lag_seconds_bucket"
    }
    series = (
        'requence_exporter_update_lag_seconds_bucket{job="requence-exporter", instance="a:9721"'
    )
    threshold = 1800
    rules = tmp_path / "alerts.yml"
    rules.write_text(rules_yaml({"exporter_lag_p95_seconds": threshold}), encoding="utf-8")
    [lagging] = [
        a
        for a in _alerts(yaml.safe_load(rules.read_text()))
        if a["alert"] == "RequenceExporterLagging"
    ]
    unit = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'{series}, le="{le}"}}',
                        "values": f"0+{n}x30",
                    }
                    for le, n in buckets.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": f"count({lagging['expr']})",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                ],
            }
        ],
    }
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(yaml.safe_dump(unit), encoding="utf-8")
    result = _promtool("test", "rules", tests)
    assert result.returncode == 0, result.stdout + result.stderr
