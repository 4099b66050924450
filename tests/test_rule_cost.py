"""What the rules cost a Prometheus: bounded, whatever the history, and never a bucket read for
a task name without a latency objective.

`make bench`'s `python -m bench.rules` measures the figures at 6 hours and 28 days for 10 and
100 task names; here its smoke size runs against a real Prometheus (query statistics of every
rule on backfilled history) and the structure of the rule file is checked. Counts, never times.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bench.rules import main as bench_rules
from exporter.core.units import promql_duration
from exporter.metrics.alerting.objectives import RuleConfig, latency_objective
from exporter.metrics.alerting.render import render, rules_text
from tests.tools import require_tool

# A raw series (no colon in its name) read over a range: `name{...}[range]`.
_RAW_RANGE = re.compile(r"(?<![A-Za-z0-9_:])([a-z_]+)(\{[^}]*\})?\[([0-9a-z]+)\]")
_DURATION_SERIES = re.compile(
    r"requence_(?:task|node)_duration_seconds_(?:bucket|count)(\{[^}]*\})?"
)
# The raw windows of the default rules: the base window, the stuck window, the span and state
# file windows, the stall threshold. Nothing raw over an SLO window.
MAX_RAW_RANGE_S = 3600


def _exprs(config: RuleConfig) -> list[str]:
    return [rule["expr"] for group in render(config)["groups"] for rule in group["rules"]]


def test_no_rule_reads_raw_series_over_more_than_an_hour() -> None:
    config = RuleConfig(latency={"resize": latency_objective("resize", "2.5s", 0.95)})
    ranges = [
        (name, promql_duration(window))
        for expr in _exprs(config)
        for name, _sel, window in _RAW_RANGE.findall(expr)
    ]
    assert ranges
    assert max(seconds for _, seconds in ranges) <= MAX_RAW_RANGE_S, ranges


def test_duration_buckets_are_read_only_by_name_and_only_with_a_latency_objective() -> None:
    assert not [m for e in _exprs(RuleConfig()) for m in _DURATION_SERIES.finditer(e)]
    config = RuleConfig(latency={"resize": latency_objective("resize", "2.5s", 0.95)})
    selectors = [m.group(1) or "" for e in _exprs(config) for m in _DURATION_SERIES.finditer(e)]
    assert selectors
    assert all('task_name="resize"' in selector for selector in selectors), selectors


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """bench.rules at its smoke size: 2 task names x 2 instances, an hour of raw history and
    half a day of recorded series, the default rules and rules with one latency objective."""
    require_tool("promtool")
    require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("rule-cost")
    latency = tmp / "latency.yml"
    config = RuleConfig(latency={"task-000": latency_objective("task-000", "2.5s", 0.95)})
    latency.write_text(rules_text(config), encoding="utf-8")
    out = tmp / "cost.json"
    assert bench_rules(["--smoke", "--rules", str(latency), "--out", str(out)]) == 0
    [result] = json.loads(out.read_text(encoding="utf-8"))
    assert (result["names"], result["instances"]) == (2, 2)
    return dict(result)


def test_the_latency_rules_read_the_objectives_name_only(measured: dict[str, Any]) -> None:
    """The smoke history has duration buckets for both names; the latency base rates read the
    5m of one bucket and one count of task-000's finished outcomes on each instance."""
    rows = {row["rule"]: row["samples"] for row in measured["latency"]["rules"]}
    per_series = 5 * 60 // 15  # samples of a 15 s series in a 5m range (one more on its edge)
    one_name = 2 * 2 * per_series  # ended and errored, on two instances
    events = rows["task_name:requence_slo_latency_events:rate_base"]
    assert one_name <= events <= one_name + 4
    # The bucket of that name, and the events recorded a moment before (one sample).
    assert one_name <= rows["task_name:requence_slo_latency_bad:rate_base"] <= one_name + 5


def test_an_evaluation_reads_a_bounded_number_of_samples_per_task_name(
    measured: dict[str, Any],
) -> None:
    """At 28 days, every rule together reads per minute what the windows' recorded points and
    5 minutes of raw counters hold, a few tens of thousands per task name, not the millions
    that summing weeks of raw buckets read."""
    default = measured["default"]
    names = measured["names"]
    assert default["samples_per_evaluation"] > 0
    # The SLO window (28d) summed from base rates recorded every minute: 40,320 points for each
    # of two series per task name, every 5 minutes; everything else is far smaller.
    window_per_minute = 2 * 40_320 / 5
    assert default["samples_per_minute_28d"] < names * window_per_minute * 3
    # No rule of the default file reads more at 28 days than the SLO window's points of the
    # task names, plus a job's up series over the absence window.
    for row in default["rules"]:
        assert row["samples_28d"] <= names * 40_320 + 10_000, row
