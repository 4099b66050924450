"""Prometheus recording and alerting rules for the exporter, rendered from one thresholds dict.

`render_rules(thresholds)` returns the rule file as a plain dict (the Helm chart builds its
PrometheusRule from it); `DEFAULT_THRESHOLDS` is the single place where thresholds, minimum
volumes and windows are set.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, NamedTuple

from exporter.core.units import promql_duration
from exporter.metrics.families import DEFAULT_LAG_BUCKETS

__all__ = [
    "BY_INSTANCE",
    "BY_JOB",
    "BY_NODE",
    "BY_TASK",
    "DEFAULT_THRESHOLDS",
    "FINISHED_NODE_ATTEMPTS",
    "FINISHED_TASKS",
    "LAG_THRESHOLD_LIMIT",
    "RECORDING_WINDOW",
    "RUNBOOK_BASE_URL",
    "Scope",
    "Selectors",
    "go_number",
    "promql_string",
    "seconds_text",
    "selectors",
    "sum_rates",
]

# Recording rules compute their rates over this window, and their names carry it (Prometheus
# naming convention `level:metric:rate5m`); dashboards use those names, so it is not a setting.
RECORDING_WINDOW: Final = "5m"

RUNBOOK_BASE_URL: Final = (
    "https://github.com/requence/requence-exporter/blob/main/docs/dashboards-and-alerts.md"
)

# Every adjustable threshold, minimum volume and window of the alerts. Durations are Prometheus
# duration strings; ratios are fractions (0.05 = 5 %); minimum volumes count events per
# RECORDING_WINDOW. The Helm chart overrides these keys from its values; values are pasted into
# the rules as text and never parsed here, so a Helm template expression works as a value.
DEFAULT_THRESHOLDS: Final[dict[str, Any]] = {
    # RequenceTaskErrorRatioHigh: share of finished tasks that errored, per task name.
    "task_error_ratio": 0.05,
    "task_error_min_finished": 10,
    "task_error_for": "10m",
    # RequenceTaskAbortsSpiking: share of finished tasks that were aborted, per task name.
    "task_abort_ratio": 0.2,
    "task_abort_min_aborted": 5,
    "task_abort_for": "5m",
    # RequenceNodeErrorsHigh: share of finished node attempts that errored, per node.
    "node_error_ratio": 0.1,
    "node_error_min_attempts": 20,
    "node_error_for": "15m",
    # RequenceTasksStuck: tasks in progress while none of that name finished in the window.
    "tasks_stuck_window": "1h",
    "tasks_stuck_for": "15m",
    # RequenceExporterDisconnected: the watch-all stream is down.
    "exporter_disconnected_for": "5m",
    # RequenceExporterStalled: connected, but no update arrived for this many seconds.
    "exporter_stall_seconds": 1800,
    "exporter_stall_for": "5m",
    # RequenceExporterLagging: 95th percentile of update lag (arrival minus server time).
    "exporter_lag_p95_seconds": 60,
    "exporter_lag_for": "15m",
    # RequenceExporterDown: Prometheus cannot scrape the exporter.
    "exporter_job_regex": ".*requence-exporter.*",
    "exporter_down_for": "5m",
    # RequenceExporterAbsent: a job seen within the window has no scrape target (or none exists).
    "exporter_absent_for": "10m",
    "exporter_absent_window": "7d",
    # RequenceTasksOldInProgress: the oldest task in progress of a name started this long ago.
    "tasks_oldest_age_seconds": 14400,
    "tasks_oldest_for": "5m",
    # RequenceExporterSpansDropped: share of the spans lost within the window.
    "spans_dropped_ratio": 0.01,
    "spans_dropped_window": "10m",
    "spans_dropped_for": "10m",
    # RequenceExporterStateSaveFailing: more failed state file saves than this in the window.
    "state_save_failures_window": "10m",
    "state_save_failures_max": 2,
    # Where the runbook_url annotations point (anchors are appended).
    "runbook_base_url": RUNBOOK_BASE_URL,
}

# histogram_quantile() never reports more than the highest finite bucket bound, so a lag
# threshold at or above it could never be exceeded: such thresholds are refused.
LAG_THRESHOLD_LIMIT: Final = float(max(DEFAULT_LAG_BUCKETS))

# Aggregations keep the labels that tell releases apart: an optional `cluster` label,
# `namespace` (set by the Prometheus Operator) and `job` (absent labels are simply empty).
BY_JOB: Final = "cluster, namespace, job"
BY_INSTANCE: Final = f"{BY_JOB}, instance"
BY_TASK: Final = f"{BY_JOB}, task_name"
BY_NODE: Final = f"{BY_TASK}, node, node_type"


def seconds_text(t: dict[str, Any], key: str) -> str:
    """The duration threshold `key` as a number of seconds in PromQL text (a placeholder the
    chart fills in when the value is one)."""
    value = str(t[key])
    if value.startswith("@@"):
        return f"@@seconds.{key}@@"
    return go_number(promql_duration(value))


def go_number(value: float) -> str:
    """A number as Go's templates print it (%v: shortest form, 6.0 -> 6, 1e6 -> 1e+06), so
    the chart, whose values Go prints, renders the same text as the rules command."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite: thresholds are checked before they get here
    text = "".join(map(str, digits))
    count, point = len(digits), len(digits) + exponent
    neg = "-" if sign else ""
    if not -4 <= point - 1 < 6:
        mantissa = text[0] + ("." + text[1:] if count > 1 else "")
        return f"{neg}{mantissa}e{'-' if point < 1 else '+'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= count:
        return f"{neg}{text}{'0' * (point - count)}"
    return f"{neg}{text[:point]}.{text[point:]}"


def promql_string(text: str) -> str:
    """`text` as a double-quoted PromQL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sum_rates(
    metrics: tuple[str, ...], by: str, window: str, selector: str = "", function: str = "rate"
) -> str:
    """PromQL for the summed per-second rate of several counters, grouped `by` (may be "").

    `function="increase"` sums the increases over the window instead.

    A counter that does not exist yet for some label values (a task name that never aborted)
    must not drop those values from the sum, so each rate gets a distinguishing label and the
    vectors are joined with `or` rather than `+`. (A `__name__` regex under rate() fails: the
    rates of two counters with equal labels collide once the name is dropped.)
    """
    parts = "\n  or ".join(
        f'label_replace({function}({m}{selector}[{window}]), "counter", "{m}", "", "")'
        for m in metrics
    )
    grouping = f"by ({by}) " if by else ""
    return f"sum {grouping}(\n  {parts}\n)"


FINISHED_TASKS: Final = tuple(f"requence_tasks_{o}_total" for o in ("ended", "errored", "aborted"))
FINISHED_NODE_ATTEMPTS: Final = tuple(
    f"requence_nodes_{o}_total" for o in ("ended", "errored", "deferred")
)


def _runbook(base: str, alert: str) -> str:
    return f"{base}#{alert.lower()}"


class Scope(NamedTuple):
    """The series of one deployment, as the Helm chart scopes its rules to its release: the
    scrape `job`, the `namespace` its constant series are labelled with and the regex the
    namespace label must match. Written into single-quoted PromQL strings as they are."""

    job: str
    namespace: str
    namespace_regex: str


class Selectors(NamedTuple):
    """What the rules put on the series they read: `raw` on the exporter's own series,
    `recorded` on the series the rules record (`{...}` or empty), and `labels` on the constant
    series they record."""

    raw: str
    recorded: str
    labels: dict[str, str]


def selectors(t: dict[str, Any], scope: Scope | None = None) -> Selectors:
    """The exporter's series of the jobs that `exporter_job_regex` matches; with `scope`, of
    that job in that namespace only, every recorded series too (two releases in one Prometheus
    never read, nor record over, each other's series)."""
    job = str(t["exporter_job_regex"]).replace("\\", "\\\\").replace('"', '\\"')
    regex = f'job=~"{job}"'
    if scope is None:
        return Selectors(f"{{{regex}}}", "", {})
    namespace = f"namespace=~'{scope.namespace_regex}'"
    return Selectors(
        f"{{{namespace}, {regex}}}",
        f"{{job='{scope.job}', {namespace}}}",
        {"job": scope.job, "namespace": scope.namespace},
    )
