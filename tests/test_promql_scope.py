"""The matcher the Helm chart adds to every selector of its rules."""

from __future__ import annotations

import pytest

from grafana.promql_scope import scope_selectors

M = "job='x'"


@pytest.mark.parametrize(
    ("expr", "scoped"),
    [
        ("up", "up{job='x'}"),
        ("up == 0", "up{job='x'} == 0"),
        ('up{instance="a"}', "up{job='x', instance=\"a\"}"),
        ('{__name__=~"requence_.*"}', "{job='x', __name__=~\"requence_.*\"}"),
        ("rate(a_total[5m])", "rate(a_total{job='x'}[5m])"),
        ("sum by (job, le) (rate(a[5m]))", "sum by (job, le) (rate(a{job='x'}[5m]))"),
        ("sum without(le)(a)", "sum without(le)(a{job='x'})"),
        ("a / on (job) group_left (node) b", "a{job='x'} / on (job) group_left (node) b{job='x'}"),
        (
            "a and on(job) b unless ignoring(le) c",
            "a{job='x'} and on(job) b{job='x'} unless ignoring(le) c{job='x'}",
        ),
        ("task:a:rate5m > 0.5 and bool b", "task:a:rate5m{job='x'} > 0.5 and bool b{job='x'}"),
        ("a offset 5m", "a{job='x'} offset 5m"),
        (
            'label_replace(a, "b", "metric_name", "", "")',
            'label_replace(a{job=\'x\'}, "b", "metric_name", "", "")',
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(b[1h:5m])))",
            "histogram_quantile(0.95, sum by (le) (rate(b{job='x'}[1h:5m])))",
        ),
        ("time() - a > 1e3", "time() - a{job='x'} > 1e3"),
        ("topk(5, a)", "topk(5, a{job='x'})"),
        ('up{job=~"r.*"} == 0', 'up{job=~"r.*"} == 0'),
        ('absent(up{ job = "r" })', 'absent(up{ job = "r" })'),
        ("a > @@threshold.a@@", "a{job='x'} > @@threshold.a@@"),
        ('count_values("v", a)', "count_values(\"v\", a{job='x'})"),
        ("SUM BY (job) (a)", "SUM BY (job) (a{job='x'})"),
    ],
)
def test_every_selector_gets_the_matcher_once(expr: str, scoped: str) -> None:
    assert scope_selectors(expr, M) == scoped


def test_a_label_value_that_mentions_job_is_not_a_job_matcher() -> None:
    assert scope_selectors('a{kind="job=1"}', M) == "a{job='x', kind=\"job=1\"}"
