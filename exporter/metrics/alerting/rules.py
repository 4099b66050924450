"""Prometheus recording and alerting rules for the exporter, rendered from one thresholds dict.

`render_rules(thresholds)` returns the rule file as a plain dict (the Helm chart builds its
PrometheusRule from it); `DEFAULT_THRESHOLDS` is the single place where thresholds, minimum
volumes and windows are set.
"""

from __future__ import annotations

import re
from typing import Any, Final

from exporter.metrics.families import DEFAULT_LAG_BUCKETS

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FINISHED_NODE_ATTEMPTS",
    "FINISHED_TASKS",
    "LAG_THRESHOLD_LIMIT",
    "RECORDING_WINDOW",
    "RUNBOOK_BASE_URL",
    "duration_seconds",
    "job_selector",
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
    # RequenceExporterAbsent: no scrape target of those jobs exists at all.
    "exporter_absent_for": "10m",
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

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNIT_SECONDS: Final = (86400, 3600, 60, 1)

_BY_TASK: Final = "job, task_name"
_BY_NODE: Final = "job, task_name, node, node_type"


def duration_seconds(duration: str) -> int:
    """Seconds in a Prometheus duration such as `1h30m` (units d, h, m, s)."""
    match = _DURATION.match(duration)
    if not duration or match is None:
        raise ValueError(f"not a duration (use e.g. 90s, 5m, 1h30m): {duration!r}")
    return sum(int(n or 0) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True))


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


def job_selector(t: dict[str, Any]) -> str:
    """`{job=~"..."}` for the exporter's scrape jobs: rules see only this release's series."""
    job = str(t["exporter_job_regex"]).replace("\\", "\\\\").replace('"', '\\"')
    return f'{{job=~"{job}"}}'
