"""The chart's SLO values render the same rules as `requence-exporter rules` with those options."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.metrics.alerting.objectives import RuleConfig, latency_objective
from tests.test_helm_chart import (
    CHART_DIR,
    JOB,
    NAMESPACE,
    RELEASE,
    TOKEN,
    chart_scoped,
    rendered_groups,
)

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
