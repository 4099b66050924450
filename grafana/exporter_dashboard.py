"""The "Requence exporter" dashboard: the exporter's own health (stream, lag, skips, spans,
process)."""

from __future__ import annotations

from typing import Any

from grafana.board import CHART, CHART_THIRD, EXPORTER, STAT, STAT_HALF, Board, dashboard
from grafana.panels import RI, per_second, quantiles, stat, target, timeseries

__all__ = ["exporter_dashboard"]


def _per_instance(expr: str) -> dict[str, Any]:
    """An instant query of a per-instance value: only series that exist now are shown."""
    return target(expr, "{{job}} {{instance}}", instant=True)


def exporter_dashboard() -> dict[str, Any]:
    """ "Requence exporter": the exporter's own health (stream, lag, skips, spans, process).

    Under --shard every replica reads the whole stream and processes its share of the tasks:
    shares (updates, tasks, lag, spans) are summed over instances; facts about the stream
    (skips) are counted by every replica, so each job's replicas are reduced with max; facts
    about one connection or process are shown per instance.
    """
    b = Board()
    b.row("Stream")
    b.add(
        stat(
            "Stream connected",
            "Whether each exporter instance holds the watch-all stream open (1) or not (0), now.",
            [_per_instance(f"requence_exporter_stream_connected{{{EXPORTER}}}")],
            "none",
            steps=[("red", None), ("green", 1)],
            mappings=[
                {
                    "options": {
                        "0": {"color": "red", "index": 0, "text": "disconnected"},
                        "1": {"color": "green", "index": 1, "text": "connected"},
                    },
                    "type": "value",
                }
            ],
        ),
        STAT,
    )
    b.add(
        stat(
            "Last update age",
            "Now minus the server time of the last update each instance read from the stream "
            "(every shard reads all of it). Grows when the stream is idle, stalled or "
            "disconnected; no value until an instance has seen or restored an update.",
            [
                _per_instance(
                    f"time() - requence_exporter_last_update_timestamp_seconds{{{EXPORTER}}}"
                )
            ],
            "s",
        ),
        STAT,
    )
    b.add(
        stat(
            "Tracked tasks",
            "Tasks the exporter holds in memory (started, not yet finished or evicted), all "
            "shards together.",
            [target(f"sum(requence_exporter_tracked_tasks{{{EXPORTER}}})", "tracked")],
            "short",
        ),
        STAT,
    )
    b.add(
        stat(
            "Scrape up",
            "Prometheus' own view, now: 1 when the last scrape of the instance succeeded.",
            [_per_instance(f"up{{{EXPORTER}}}")],
            "none",
            steps=[("red", None), ("green", 1)],
        ),
        STAT,
    )
    b.add(
        timeseries(
            "Update lag percentiles",
            "Arrival time minus the update's server timestamp, over the updates the selected "
            "instances processed (each shard its share): how far behind Requence the "
            "exporter is. High right after a start with --since (replay).",
            quantiles("requence_exporter_update_lag_seconds_bucket", EXPORTER, exemplar=False),
            "s",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Reconnects by reason",
            "Reconnects of the watch-all stream per second, by reason, all instances "
            "together (each holds its own connection).",
            [
                target(
                    per_second("requence_exporter_reconnects_total", EXPORTER, "reason"),
                    "{{reason}}",
                )
            ],
            "ops",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Last update age",
            "Now minus the server time of the last update read from the stream, per instance.",
            [
                target(
                    f"time() - requence_exporter_last_update_timestamp_seconds{{{EXPORTER}}}",
                    "{{job}} {{instance}}",
                )
            ],
            "s",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Stream position",
            "Position of the last update each instance read; it only goes up while updates "
            "flow, and the shards of one stream show the same position.",
            [target(f"requence_exporter_stream_position{{{EXPORTER}}}", "{{job}} {{instance}}")],
            "none",
        ),
        CHART,
    )
    b.row("Updates")
    b.add(
        timeseries(
            "Updates by type",
            "Valid updates processed per second, by update type, all shards together (each "
            "processes its share).",
            [
                target(
                    per_second("requence_exporter_updates_total", EXPORTER, "type"),
                    "{{type}}",
                )
            ],
            "ops",
            stack=True,
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Skipped updates by reason",
            "Events not turned into updates per second, by reason (malformed JSON, unknown "
            "type, missing task id, bad field, duplicate position, ...). Every shard reads and "
            "skips the same events, so each job counts once (the most of its instances).",
            [
                target(
                    "sum by (reason) (max by (job, reason) "
                    f"(rate(requence_exporter_updates_skipped_total{{{EXPORTER}}}[{RI}])))",
                    "{{reason}}",
                )
            ],
            "ops",
        ),
        CHART,
    )
    b.row("Task tracking")
    b.add(
        timeseries(
            "Tracked tasks",
            "Tasks held in memory per instance; bounded by --max-tracked-tasks.",
            [target(f"requence_exporter_tracked_tasks{{{EXPORTER}}}", "{{job}} {{instance}}")],
            "short",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Evicted and incomplete tasks",
            "Per second: tasks evicted without a terminal update (--task-ttl or "
            "--max-tracked-tasks), tasks first seen without their taskStart, and durations "
            "dropped as negative; all shards together.",
            [
                target(
                    per_second(f"requence_exporter_{name}_total", EXPORTER),
                    name.replace("_", " "),
                )
                for name in ("evicted_tasks", "incomplete_tasks", "negative_durations")
            ],
            "ops",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Label overflow by label",
            "Label values folded into __other__ per second because a label reached "
            "--max-label-values distinct values.",
            [
                target(
                    per_second("requence_exporter_label_overflow_total", EXPORTER, "label"),
                    "{{label}}",
                )
            ],
            "ops",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Spans exported and dropped",
            "Spans per second handed to the OTLP exporter, and spans lost (queue full or "
            "export failed). Both stay at zero when tracing is off.",
            [
                target(
                    per_second(f"requence_exporter_spans_{kind}_total", EXPORTER),
                    kind,
                )
                for kind in ("exported", "dropped")
            ],
            "ops",
        ),
        CHART,
    )
    b.row("Process")
    b.add(
        timeseries(
            "Resident memory",
            "Resident memory of each exporter process; it grows with tracked tasks (about "
            "500 bytes each) and is bounded by --max-tracked-tasks.",
            [target(f"process_resident_memory_bytes{{{EXPORTER}}}", "{{job}} {{instance}}")],
            "bytes",
        ),
        CHART_THIRD,
    )
    b.add(
        timeseries(
            "CPU",
            "CPU time per second of each exporter process (100 % = one core, its ceiling: "
            "shard with --shard past it).",
            [
                target(
                    f"rate(process_cpu_seconds_total{{{EXPORTER}}}[{RI}])",
                    "{{job}} {{instance}}",
                )
            ],
            "percentunit",
        ),
        CHART_THIRD,
    )
    b.add(
        timeseries(
            "Open file descriptors",
            "Open file descriptors of each exporter process as a share of its limit.",
            [
                target(
                    f"process_open_fds{{{EXPORTER}}} / process_max_fds{{{EXPORTER}}}",
                    "{{job}} {{instance}}",
                )
            ],
            "percentunit",
        ),
        CHART_THIRD,
    )
    b.add(
        stat(
            "Restarts in the time range",
            "How often each instance's process started anew in the selected range (a new "
            "process start time); a pod replaced by another is a new instance instead.",
            [
                _per_instance(
                    f"changes(process_start_time_seconds{{{EXPORTER}}}[$__range])",
                )
            ],
            "short",
        ),
        STAT_HALF,
    )
    b.add(
        stat(
            "Version",
            "Exporter versions running now, with how many instances run each (build_info).",
            [
                target(
                    f"count by (version) (requence_exporter_build_info{{{EXPORTER}}})",
                    "{{version}}",
                    instant=True,
                )
            ],
            "short",
        ),
        STAT_HALF,
    )
    return dashboard(
        "requence-exporter",
        "Requence exporter",
        "Health of the requence-exporter itself: stream, lag, skipped updates, task "
        "tracking, label overflow, spans, process.",
        b,
        tasks=False,
    )
