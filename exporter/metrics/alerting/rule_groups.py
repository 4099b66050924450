"""The exporter's recording and alerting rule groups, rendered from the thresholds.

`rules` holds the thresholds and the PromQL helpers these are written with.
"""

from __future__ import annotations

from typing import Any

from exporter.core.units import promql_duration
from exporter.metrics.alerting.rules import (
    BY_INSTANCE,
    BY_JOB,
    BY_NODE,
    BY_TASK,
    DEFAULT_THRESHOLDS,
    FINISHED_NODE_ATTEMPTS,
    FINISHED_TASKS,
    LAG_THRESHOLD_LIMIT,
    RECORDING_WINDOW,
    Scope,
    Selectors,
    _runbook,
    selectors,
    sum_rates,
)

__all__ = ["UP_PRESENT", "jobs_group", "render_rules"]

# The jobs Prometheus scrapes the exporter in, recorded so that a job that vanished is known.
UP_PRESENT = "job:requence_exporter_up:present"


def _recording_rules(s: Selectors) -> list[dict[str, Any]]:
    w, sel, rec = RECORDING_WINDOW, s.raw, s.recorded
    return [
        {
            "record": f"task_name:requence_tasks_finished:rate{w}",
            "expr": sum_rates(FINISHED_TASKS, BY_TASK, w, sel),
        },
        {
            "record": f"task_name:requence_tasks_errored:rate{w}",
            "expr": f"sum by ({BY_TASK}) (rate(requence_tasks_errored_total{sel}[{w}]))",
        },
        {
            "record": f"task_name:requence_tasks_aborted:rate{w}",
            "expr": f"sum by ({BY_TASK}) (rate(requence_tasks_aborted_total{sel}[{w}]))",
        },
        {
            # Aborted tasks were cancelled from outside: like the SLO, the error ratio divides
            # by the tasks that ended or errored.
            "record": f"task_name:requence_tasks_error_ratio:rate{w}",
            "expr": (
                f"task_name:requence_tasks_errored:rate{w}{rec}\n"
                f"  / on ({BY_TASK})\n"
                f"({sum_rates(FINISHED_TASKS[:2], BY_TASK, w, sel)} > 0)"
            ),
        },
        {
            "record": f"task_name:requence_tasks_abort_ratio:rate{w}",
            "expr": (
                f"task_name:requence_tasks_aborted:rate{w}{rec}\n"
                f"  / on ({BY_TASK})\n"
                f"(task_name:requence_tasks_finished:rate{w}{rec} > 0)"
            ),
        },
        {
            "record": f"node:requence_node_attempts_finished:rate{w}",
            "expr": sum_rates(FINISHED_NODE_ATTEMPTS, BY_NODE, w, sel),
        },
        {
            "record": f"node:requence_nodes_errored:rate{w}",
            "expr": f"sum by ({BY_NODE}) (rate(requence_nodes_errored_total{sel}[{w}]))",
        },
        {
            "record": f"node:requence_nodes_error_ratio:rate{w}",
            "expr": (
                f"node:requence_nodes_errored:rate{w}{rec}\n"
                f"  / on ({BY_NODE})\n"
                f"(node:requence_node_attempts_finished:rate{w}{rec} > 0)"
            ),
        },
    ]


def _alert(
    name: str,
    expr: str,
    *,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    runbook_base: str,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": _runbook(runbook_base, name),
    }
    return rule


def _alerting_rules(t: dict[str, Any], s: Selectors) -> list[dict[str, Any]]:
    w, sel, rec = RECORDING_WINDOW, s.raw, s.recorded
    window_s = promql_duration(w)
    base = str(t["runbook_base_url"])
    stall_s = t["exporter_stall_seconds"]
    dw = t["spans_dropped_window"]
    dropped = f"sum by ({BY_INSTANCE}) (increase(requence_exporter_spans_dropped_total{sel}[{dw}]))"
    exported = (
        f"sum by ({BY_INSTANCE}) (increase(requence_exporter_spans_exported_total{sel}[{dw}]))"
    )
    return [
        _alert(
            "RequenceTaskErrorRatioHigh",
            f"task_name:requence_tasks_error_ratio:rate{w}{rec} > {t['task_error_ratio']}\n"
            f"and on ({BY_TASK})\n"
            f"task_name:requence_tasks_finished:rate{w}{rec} * {window_s} >= "
            f"{t['task_error_min_finished']}",
            for_=str(t["task_error_for"]),
            severity="critical",
            summary=(
                "Requence task {{ $labels.task_name }} errors on "
                "{{ $value | humanizePercentage }} of its runs"
            ),
            description=(
                "{{ $value | humanizePercentage }} of the {{ $labels.task_name }} tasks that "
                f"finished in the last {w} (job {{{{ $labels.job }}}}) ended with taskError; "
                "the threshold is "
                f"{t['task_error_ratio']} with at least {t['task_error_min_finished']} finished "
                f"tasks per {w}."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceTaskAbortsSpiking",
            f"task_name:requence_tasks_abort_ratio:rate{w}{rec} > {t['task_abort_ratio']}\n"
            f"and on ({BY_TASK})\n"
            f"task_name:requence_tasks_aborted:rate{w}{rec} * {window_s} >= "
            f"{t['task_abort_min_aborted']}",
            for_=str(t["task_abort_for"]),
            severity="warning",
            summary=(
                "Requence task {{ $labels.task_name }} is aborted on "
                "{{ $value | humanizePercentage }} of its runs"
            ),
            description=(
                "{{ $value | humanizePercentage }} of the {{ $labels.task_name }} tasks that "
                f"finished in the last {w} (job {{{{ $labels.job }}}}) were aborted; "
                "the threshold is "
                f"{t['task_abort_ratio']} with at least {t['task_abort_min_aborted']} aborts "
                f"per {w}."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceNodeErrorsHigh",
            f"node:requence_nodes_error_ratio:rate{w}{rec} > {t['node_error_ratio']}\n"
            f"and on ({BY_NODE})\n"
            f"node:requence_node_attempts_finished:rate{w}{rec} * {window_s} >= "
            f"{t['node_error_min_attempts']}",
            for_=str(t["node_error_for"]),
            severity="warning",
            summary=(
                "Node {{ $labels.node }} of Requence task {{ $labels.task_name }} fails "
                "{{ $value | humanizePercentage }} of its attempts"
            ),
            description=(
                "{{ $value | humanizePercentage }} of the finished attempts of node "
                "{{ $labels.node }} ({{ $labels.node_type }}) in task {{ $labels.task_name }} "
                f"(job {{{{ $labels.job }}}}) ended with nodeError in the last {w}; "
                "the threshold is "
                f"{t['node_error_ratio']} with at least {t['node_error_min_attempts']} finished "
                f"attempts per {w}."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceTasksStuck",
            f"sum by ({BY_TASK}) (requence_tasks_in_progress{sel}) > 0\n"
            f"unless on ({BY_TASK})\n"
            f"{sum_rates(FINISHED_TASKS, BY_TASK, str(t['tasks_stuck_window']), sel)} > 0\n"
            f"unless on ({BY_JOB})\n"
            f"min by ({BY_JOB}) (requence_exporter_stream_connected{sel}) == 0",
            for_=str(t["tasks_stuck_for"]),
            severity="warning",
            summary=(
                "{{ $value }} Requence {{ $labels.task_name }} tasks are in progress "
                "and none finishes"
            ),
            description=(
                "{{ $value }} {{ $labels.task_name }} tasks are in progress "
                "(job {{ $labels.job }}) "
                f"but none of them ended, errored or was aborted in the last "
                f"{t['tasks_stuck_window']}, while the exporter is connected."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterDisconnected",
            f"requence_exporter_stream_connected{sel} == 0",
            for_=str(t["exporter_disconnected_for"]),
            severity="critical",
            summary=(
                "Requence exporter {{ $labels.instance }} is not connected to the update stream"
            ),
            description=(
                "The exporter {{ $labels.instance }} (job {{ $labels.job }}) has had no watch-all "
                f"connection for more than {t['exporter_disconnected_for']}; task and node metrics "
                "and traces are not being updated (stream_connected = {{ $value }})."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterStalled",
            # Until an exporter knows of an update (none since it started and none in its
            # state file) its age counts from the process start, never from 1970; a 0 from
            # older versions is treated as unknown too.
            "time() - (\n"
            f"  requence_exporter_last_update_timestamp_seconds{sel} > 0\n"
            f"  or on ({BY_INSTANCE})\n"
            f"  process_start_time_seconds{sel}\n"
            f") > {stall_s}\n"
            f"and on ({BY_INSTANCE})\n"
            f"requence_exporter_stream_connected{sel} == 1\n"
            f"unless on ({BY_INSTANCE})\n"
            f"sum by ({BY_INSTANCE}) "
            f"(increase(requence_exporter_updates_total{sel}[{stall_s}s])) > 0",
            for_=str(t["exporter_stall_for"]),
            severity="warning",
            summary=(
                "Requence exporter {{ $labels.instance }} is connected but receives no updates"
            ),
            description=(
                "The exporter {{ $labels.instance }} (job {{ $labels.job }}) is connected, but no "
                f"update arrived in the last {stall_s}s; the last one is "
                "{{ $value | humanizeDuration }} old (or, when none arrived since the exporter "
                "started, it started that long ago)."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterLagging",
            "histogram_quantile(0.95,\n"
            f"  sum by ({BY_INSTANCE}, le) "
            f"(rate(requence_exporter_update_lag_seconds_bucket{sel}[{w}]))\n"
            f") > {t['exporter_lag_p95_seconds']}",
            for_=str(t["exporter_lag_for"]),
            severity="warning",
            summary=(
                "Requence exporter {{ $labels.instance }} sees updates "
                "{{ $value | humanizeDuration }} late"
            ),
            description=(
                "95 % of the updates that reached the exporter {{ $labels.instance }} "
                f"(job {{{{ $labels.job }}}}) in the last {w} arrived up to "
                "{{ $value | humanizeDuration }} after the server recorded them; the threshold is "
                f"{t['exporter_lag_p95_seconds']}s."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterDown",
            f"up{sel} == 0",
            for_=str(t["exporter_down_for"]),
            severity="critical",
            summary="Prometheus cannot scrape the Requence exporter {{ $labels.instance }}",
            description=(
                "The scrape of {{ $labels.instance }} (job {{ $labels.job }}) has failed for more "
                f"than {t['exporter_down_for']}; no Requence metrics are collected from it "
                "(up = {{ $value }})."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterAbsent",
            # A job seen within the window whose targets are gone, with its labels; when no job
            # was seen at all, absent() (which names a job only when the selector does).
            f"(\n  group by ({BY_JOB}) (last_over_time({UP_PRESENT}{sel}"
            f"[{t['exporter_absent_window']}]))\n"
            f"  unless on ({BY_JOB})\n  up{sel}\n)\nor on ()\n(\n  absent(up{sel})\n"
            f"  unless on ()\n  count(last_over_time({UP_PRESENT}{sel}"
            f"[{t['exporter_absent_window']}]))\n)",
            for_=str(t["exporter_absent_for"]),
            severity="critical",
            summary=(
                "Prometheus has no Requence exporter target to scrape"
                "{{ with $labels.job }} in job {{ . }}{{ end }}"
            ),
            description=(
                "Prometheus has had no scrape target in the exporter's job"
                "{{ with $labels.job }} {{ . }}{{ end }}"
                "{{ with $labels.namespace }} (namespace {{ . }}){{ end }} for "
                f"{t['exporter_absent_for']} (absent = {{{{ $value }}}}): the pod is not running, "
                "or no ServiceMonitor or scrape config selects it. A job gone for longer than "
                f"{t['exporter_absent_window']} is forgotten unless no job is left at all."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceTasksOldInProgress",
            f"time() - min by ({BY_TASK}) "
            f"(requence_tasks_oldest_in_progress_start_timestamp_seconds{sel})\n"
            f"> {t['tasks_oldest_age_seconds']}",
            for_=str(t["tasks_oldest_for"]),
            severity="warning",
            summary=(
                "The oldest Requence {{ $labels.task_name }} task in progress started "
                "{{ $value | humanizeDuration }} ago"
            ),
            description=(
                "A {{ $labels.task_name }} task (job {{ $labels.job }}) has been in progress for "
                "{{ $value | humanizeDuration }}, longer than "
                f"{t['tasks_oldest_age_seconds']}s: work of that name is backing up or one task "
                "hangs, even if others still finish."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterSpansDropped",
            f"{dropped}\n/ on ({BY_INSTANCE})\n(\n  {dropped}\n  + on ({BY_INSTANCE})\n  "
            f"{exported}\n) > {t['spans_dropped_ratio']}",
            for_=str(t["spans_dropped_for"]),
            severity="warning",
            summary=(
                "Requence exporter {{ $labels.instance }} drops "
                "{{ $value | humanizePercentage }} of its spans"
            ),
            description=(
                "The exporter {{ $labels.instance }} (job {{ $labels.job }}) could not export "
                f"{{{{ $value | humanizePercentage }}}} of its spans over the last {dw} (the "
                f"threshold is {t['spans_dropped_ratio']}, held for {t['spans_dropped_for']}); "
                "those traces are incomplete."
            ),
            runbook_base=base,
        ),
        _alert(
            "RequenceExporterStateSaveFailing",
            f"sum by ({BY_INSTANCE}) (increase(requence_exporter_state_save_failures_total"
            f"{sel}[{t['state_save_failures_window']}])) > {t['state_save_failures_max']}",
            for_="",
            severity="warning",
            summary="Requence exporter {{ $labels.instance }} cannot save its state file",
            description=(
                "The exporter {{ $labels.instance }} (job {{ $labels.job }}) failed "
                f"{{{{ $value }}}} state file saves in the last {t['state_save_failures_window']}; "
                "a restart would resume from an older position."
            ),
            runbook_base=base,
        ),
    ]


def _check_lag_threshold(value: Any) -> None:
    """Refuse a lag threshold the lag histogram's buckets cannot express (numbers only:
    a Helm template expression is checked by the chart's values schema instead)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not 0 <= value < LAG_THRESHOLD_LIMIT:
        raise ValueError(
            f"exporter_lag_p95_seconds = {value} can never fire: the update lag histogram's "
            f"highest bucket is {LAG_THRESHOLD_LIMIT:g}s and histogram_quantile() reports no "
            f"more than that; use a threshold from 0 to below {LAG_THRESHOLD_LIMIT:g}"
        )


def jobs_group(s: Selectors, interval: str) -> dict[str, Any]:
    """The jobs seen, recorded every `interval` (slo_long_interval): RequenceExporterAbsent
    reads days of it on every evaluation."""
    return {
        "name": "requence-exporter.jobs",
        "interval": interval,
        "rules": [{"record": UP_PRESENT, "expr": f"group by ({BY_JOB}) (up{s.raw})"}],
    }


def render_rules(thresholds: dict[str, Any], scope: Scope | None = None) -> dict[str, Any]:
    """The Prometheus rule file (as a dict) for `thresholds` laid over `DEFAULT_THRESHOLDS`,
    reading the series of `scope` (`selectors`)."""
    unknown = sorted(set(thresholds) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ValueError(f"unknown threshold keys: {', '.join(unknown)}")
    merged = {**DEFAULT_THRESHOLDS, **thresholds}
    _check_lag_threshold(merged["exporter_lag_p95_seconds"])
    s = selectors(merged, scope)
    return {
        "groups": [
            {
                "name": "requence-exporter.recording",
                "rules": _recording_rules(s),
            },
            {"name": "requence-exporter.alerts", "rules": _alerting_rules(merged, s)},
        ]
    }
