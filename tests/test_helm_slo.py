"""The chart's SLO values render the same rules as `requence-exporter rules` with those options."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.metrics.alerting.objectives import RuleConfig, latency_objective
from tests.helm_chart import (
    CHART_DIR,
    JOB,
    NAMESPACE,
    RELEASE,
    TOKEN,
    chart_scoped,
    rendered_groups,
)
from tests.tools import require_tool

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")

SLO = {
    "objectives": {"invoice-processing": 0.999, 'odd "name"': 0.95},
    "latency": {"image-resize": {"threshold": "2.5s", "objective": 0.95}},
}


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    """The chart loaded by the Helm engine."""
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def test_slo_values_render_like_the_rules_command(chart: Any) -> None:
    config = RuleConfig(
        # The chart sets the job regex from the release (test_helm_chart.chart_rules).
        thresholds={"slo_objective": 0.995, "exporter_job_regex": JOB},
        objectives={"invoice-processing": 0.999, 'odd "name"': 0.95},
        latency={"image-resize": latency_objective("image-resize", "2.5s", 0.95)},
    )
    extra = {"slo": SLO, "thresholds": {"slo_objective": 0.995}}
    assert rendered_groups(chart, extra) == chart_scoped(config)


def test_error_ratio_alert_is_opt_in_through_disabled_alerts(chart: Any) -> None:
    names = {r.get("alert") for g in rendered_groups(chart) for r in g["rules"]}
    assert "RequenceTaskErrorRatioHigh" not in names
    assert "RequenceTaskErrorBudgetBurn" in names
    opted = {
        r.get("alert") for g in rendered_groups(chart, {"disabledAlerts": []}) for r in g["rules"]
    }
    assert "RequenceTaskErrorRatioHigh" in opted


@pytest.mark.parametrize(
    "slo",
    [
        {"latency": {"image-resize": {"threshold": "2s", "objective": 0.95}}},
        {"latency": {"image-resize": {"threshold": "2.5s"}}},
        {"objectives": {"invoice-processing": 1.5}},
        {"objectives": {"two\nlines": 0.99}},
    ],
)
def test_schema_rejects_bad_slo_values(chart: Any, slo: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"prometheusRule": {"enabled": True, "slo": slo}})


def test_latency_threshold_off_the_buckets_fails_the_render_without_the_schema(
    tmp_path: Path,
) -> None:
    unchecked = tmp_path / "requence-exporter"
    shutil.copytree(CHART_DIR, unchecked)
    (unchecked / "values.schema.json").unlink()
    values = {
        **TOKEN,
        "prometheusRule": {
            "enabled": True,
            "slo": {"latency": {"image-resize": {"threshold": "2s", "objective": 0.95}}},
        },
    }
    with (
        helm.Chart.load(unchecked) as loaded,
        pytest.raises(
            helm.HelmRenderError, match=r"2s is not a task duration bucket \(one of .*2.5s"
        ),
    ):
        loaded.render(values, name=RELEASE, namespace=NAMESPACE)


def _series(namespace: str, name: str, values: str) -> dict[str, str]:
    labels = f'job="{JOB}", namespace="{namespace}", instance="a:9721", task_name="checkout"'
    return {"series": f"requence_tasks_{name}_total{{{labels}}}", "values": values}


@pytest.mark.slow
def test_one_release_name_in_two_namespaces_keeps_two_sets_of_slos(
    chart: Any, tmp_path: Path
) -> None:
    """Release `rel` in team1 and in team2 share a job name (the Service's); each release's
    rules record and alert only on its own namespace's series, whatever the other's do."""
    for own, other in (("team1", "team2"), ("team2", "team1")):
        rules = tmp_path / f"{own}.yml"
        groups = rendered_groups(chart, {}, {"namespaceOverride": own})
        rules.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
        # team1's checkout fails every run from 60m; team2's is healthy.
        failing = {"ended": "0+50x60 3000x60", "errored": "0x60 0+50x60"}
        healthy = {"ended": "0+50x120", "errored": "0x120"}
        series = [
            _series(ns, name, (failing if ns == "team1" else healthy)[name])
            for ns in ("team1", "team2")
            for name in ("ended", "errored")
        ]
        recorded = '{__name__=~".+:.+"}'
        alerts = [{"labels": f'{{namespace="team1", job="{JOB}"}}', "value": 2}]
        if own != "team1":
            alerts = []
        tests = {
            "rule_files": [str(rules)],
            "evaluation_interval": "1m",
            "tests": [
                {
                    "interval": "1m",
                    "input_series": series,
                    "promql_expr_test": [
                        {
                            "expr": f'count({recorded} unless {{namespace="{own}"}})',
                            "eval_time": "100m",
                            "exp_samples": [],
                        },
                        {
                            # and its own series are recorded
                            "expr": f'count({{__name__=~".+:.+", namespace="{own}"}}) > bool 10',
                            "eval_time": "100m",
                            "exp_samples": [{"labels": "{}", "value": 1}],
                        },
                        {
                            "expr": 'count by (namespace, job) (ALERTS{alertstate="firing", '
                            'alertname="RequenceTaskErrorBudgetBurn"})',
                            "eval_time": "100m",
                            "exp_samples": alerts,
                        },
                    ],
                }
            ],
        }
        path = tmp_path / f"{own}-tests.yml"
        path.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
        result = subprocess.run(
            [require_tool("promtool"), "test", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{own} (other {other}):\n{result.stdout}{result.stderr}"


def test_every_recorded_series_a_rule_reads_is_the_releases_own(chart: Any) -> None:
    """Another release records the same names: a rule that reads a recorded series without the
    release's job and namespace would mix both releases' series."""
    groups = rendered_groups(chart, {"slo": SLO, "disabledAlerts": []})
    names = sorted({r["record"] for g in groups for r in g["rules"] if "record" in r})
    # A recorded name outside a string, and the selector after it if there is one.
    reads = re.compile(
        rf"(?<![\w:\"])(?:{'|'.join(map(re.escape, names))})(?![\w:])(\{{[^}}]*\}})?"
    )
    namespace, job = f"namespace=~'{NAMESPACE}'", re.compile(f"job=~?['\"]{JOB}['\"]")
    found = [
        (rule.get("alert") or rule["record"], m.group(), bool(m.group(1)))
        for group in groups
        for rule in group["rules"]
        for m in reads.finditer(rule["expr"])
    ]
    assert len(found) > 100  # the pattern finds the reads
    assert [f for f in found if not (f[2] and namespace in f[1] and job.search(f[1]))] == []


@pytest.mark.slow
def test_the_latency_rules_exist_only_with_a_latency_slo(chart: Any) -> None:
    """Without a latency objective no latency rule is rendered (none reads a bucket), and
    disabling the latency alert is still accepted."""
    groups = rendered_groups(chart, {"disabledAlerts": ["RequenceTaskLatencyBudgetBurn"]})
    text = yaml.safe_dump(groups)
    assert "latency" not in text
    assert "requence_task_duration_seconds" not in text
    with_latency = yaml.safe_dump(rendered_groups(chart, {"slo": SLO}))
    assert "requence_task_duration_seconds_bucket{" in with_latency


@pytest.mark.parametrize(
    "thresholds",
    [
        {"slo_page_slow_short_window": "7h"},
        {"slo_ticket_fast_short_window": "1m"},
        {"slo_interval": "10m"},
    ],
)
def test_windows_that_cannot_work_together_fail_the_render(
    chart: Any, thresholds: dict[str, str]
) -> None:
    with pytest.raises(helm.HelmRenderError, match=next(iter(thresholds))):
        rendered_groups(chart, {"thresholds": thresholds})
