"""The "Requence / Tasks" dashboard: throughput, outcomes, error ratio, durations, worst tasks."""

from __future__ import annotations

from typing import Any, Final

from exporter.metrics.alerting.rules import FINISHED_TASKS, RECORDING_WINDOW, sum_rates
from grafana.board import CHART, CHART_WIDE, STAT, TASKS, Board, dashboard
from grafana.panels import (
    RI,
    bargauge,
    heatmap,
    per_second,
    quantiles,
    stat,
    target,
    timeseries,
    traces_link,
)

__all__ = ["tasks_dashboard"]

# The window of the recorded ratios the alerts read.
W: Final = RECORDING_WINDOW
TASK_BUCKETS: Final = "requence_task_duration_seconds_bucket"
TASK_TRACES: Final = traces_link(
    "Traces of ${__field.labels.task_name}",
    '{ span.requence.task.name = "${__field.labels.task_name}" }',
)


def tasks_dashboard() -> dict[str, Any]:
    """ "Requence / Tasks": throughput, outcomes, error ratio, durations, worst tasks."""
    b = Board()
    b.row("Overview")
    b.add(
        stat(
            "Tasks started",
            "Tasks that began (taskStart) per second, all selected task names together.",
            [target(per_second("requence_tasks_started_total", TASKS), "started")],
            "ops",
        ),
        STAT,
    )
    b.add(
        stat(
            "Error ratio",
            "Errored / (ended + errored) tasks, all selected task names together: the SLO's "
            "ratio (aborted tasks were cancelled from outside and count as neither).",
            [
                target(
                    per_second("requence_tasks_errored_total", TASKS)
                    + f"\n/ ({sum_rates(FINISHED_TASKS[:2], '', RI, f'{{{TASKS}}}')} > 0)",
                    "error ratio",
                )
            ],
            "percentunit",
        ),
        STAT,
    )
    b.add(
        stat(
            "In progress",
            "Tasks started and not yet finished, as the exporter tracks them now.",
            [target(f"sum(requence_tasks_in_progress{{{TASKS}}})", "in progress")],
            "short",
        ),
        STAT,
    )
    b.add(
        stat(
            "Aborted",
            "Tasks aborted (taskAborted) per second.",
            [target(per_second("requence_tasks_aborted_total", TASKS), "aborted")],
            "ops",
            steps=[("green", None), ("orange", 0.001)],
        ),
        STAT,
    )
    b.row("Throughput and outcomes")
    b.add(
        timeseries(
            "Tasks by outcome",
            "Per second: tasks started, and tasks finished by outcome (taskEnd = ended, "
            "taskError = errored, taskAborted = aborted).",
            [
                target(
                    per_second(f"requence_tasks_{kind}_total", TASKS),
                    kind,
                )
                for kind in ("started", "ended", "errored", "aborted")
            ],
            "ops",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Tasks started by task name",
            "Per second, by task name: which workflows carry the load.",
            [
                target(
                    per_second("requence_tasks_started_total", TASKS, "task_name"),
                    "{{task_name}}",
                )
            ],
            "ops",
            stack=True,
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Error ratio by task name (alerting view)",
            f"Errored / (ended + errored) tasks over {W}, per job and task name: the recorded "
            "ratio task_name:requence_tasks_error_ratio:rate5m. RequenceTaskErrorBudgetBurn "
            "pages when this ratio over its short window (5m) and over its long window (1h) "
            "exceeds (1 - objective) x 14.4 (14.4 % at 99 %) with at least 20 tasks finished "
            "in the hour; the opt-in RequenceTaskErrorRatioHigh compares it with "
            "task_error_ratio. Requence / SLOs shows the windows and factors in force.",
            [
                target(
                    f"task_name:requence_tasks_error_ratio:rate{W}{{{TASKS}}}",
                    "{{task_name}} ({{job}})",
                )
            ],
            "percentunit",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "In progress by task name",
            "Tasks started and not yet finished, per task name. A line that only grows while "
            "nothing finishes is what RequenceTasksStuck looks for.",
            [
                target(
                    f"sum by (task_name) (requence_tasks_in_progress{{{TASKS}}})",
                    "{{task_name}}",
                )
            ],
            "short",
            stack=True,
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Oldest task in progress by task name",
            "How long the oldest task of each name still in progress has been running "
            "(now minus requence_tasks_oldest_in_progress_start_timestamp_seconds, the "
            "earliest over the instances). A line that keeps rising while tasks of the name "
            "still finish is a backlog or a hung task: RequenceTasksOldInProgress fires past "
            "tasks_oldest_age_seconds (4h by default).",
            [
                target(
                    "time() - min by (task_name) "
                    f"(requence_tasks_oldest_in_progress_start_timestamp_seconds{{{TASKS}}})",
                    "{{task_name}}",
                )
            ],
            "s",
        ),
        CHART_WIDE,
    )
    b.row("Duration")
    b.add(
        timeseries(
            "Task duration percentiles",
            "taskStart to the terminal update (server timestamps), all outcomes. Exemplars "
            "link a data point to the trace of one task.",
            quantiles(TASK_BUCKETS, TASKS),
            "s",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Task duration p95 by task name",
            "95th percentile of task duration per task name; the data link opens the traces "
            "of that task name.",
            [
                target(
                    "histogram_quantile(0.95, sum by (task_name, le) "
                    f"(rate({TASK_BUCKETS}{{{TASKS}}}[{RI}])))",
                    "{{task_name}}",
                    exemplar=True,
                )
            ],
            "s",
            links=[TASK_TRACES],
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Task duration p95 by outcome",
            "Do failures fail fast or after a long time? 95th percentile per outcome.",
            [
                target(
                    "histogram_quantile(0.95, sum by (outcome, le) "
                    f"(rate({TASK_BUCKETS}{{{TASKS}}}[{RI}])))",
                    "{{outcome}}",
                    exemplar=True,
                )
            ],
            "s",
        ),
        CHART_WIDE,
    )
    b.add(
        heatmap(
            "Task duration distribution",
            "Tasks finishing per second in each duration bucket, the selected task names "
            "together. A rate, not a count per cell: counts over a window longer than the "
            "step would count each task in several cells.",
            [
                target(
                    f"sum by (le) (rate({TASK_BUCKETS}{{{TASKS}}}[{RI}]))",
                    "{{le}}",
                    exemplar=True,
                    fmt="heatmap",
                )
            ],
            "s",
        ),
        CHART_WIDE,
    )
    b.row("Worst tasks in the time range")
    b.add(
        bargauge(
            "Top failing tasks",
            "The 10 task names with the most taskError updates in the selected time range "
            "(rounded: increase() extrapolates to the range's edges).",
            [
                target(
                    "topk(10, round(sum by (task_name) "
                    f"(increase(requence_tasks_errored_total{{{TASKS}}}[$__range]))))",
                    "{{task_name}}",
                    instant=True,
                )
            ],
            "short",
        ),
        CHART,
    )
    b.add(
        bargauge(
            "Slowest tasks (p95)",
            "The 10 task names with the highest 95th percentile duration over the range.",
            [
                target(
                    "topk(10, histogram_quantile(0.95, sum by (task_name, le) "
                    f"(rate({TASK_BUCKETS}{{{TASKS}}}[$__range]))))",
                    "{{task_name}}",
                    instant=True,
                )
            ],
            "s",
        ),
        CHART,
    )
    return dashboard(
        "requence-tasks",
        "Requence / Tasks",
        "Requence tasks followed through the watch-all stream: throughput, outcomes, "
        "error ratio, durations.",
        b,
    )
