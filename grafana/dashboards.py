"""The three Grafana dashboards (tasks, nodes, exporter) as JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from exporter.metrics.alerting.rules import FINISHED_TASKS, RECORDING_WINDOW, sum_rates
from grafana.panels import (
    Board,
    bargauge,
    datasource_variable,
    heatmap,
    query_variable,
    stat,
    target,
    timeseries,
    traces_link,
)

__all__ = ["DASHBOARDS", "exporter_dashboard", "nodes_dashboard", "tasks_dashboard"]

# The release: an optional cluster label, the namespace and the job (absent labels match .*).
EXPORTER = 'cluster=~"$cluster", namespace=~"$namespace", job=~"$job"'
TASKS = f'{EXPORTER}, task_name=~"$task_name"'
NODES = f'{TASKS}, node_type=~"$node_type", node=~"$node"'
RI = "$__rate_interval"
W = RECORDING_WINDOW
TASK_BUCKETS = "requence_task_duration_seconds_bucket"
NODE_BUCKETS = "requence_node_duration_seconds_bucket"
QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))

TASK_TRACES = traces_link(
    "Traces of ${__field.labels.task_name}",
    '{ span.requence.task.name = "${__field.labels.task_name}" }',
)
# A node span is a child of its task's span: the task name narrows the search to that task's
# node of that name, not every task's node with the same alias.
NODE_TRACES = traces_link(
    "Traces of node ${__field.labels.node} in ${__field.labels.task_name}",
    '{ span.requence.task.name = "${__field.labels.task_name}" } > '
    '{ span.requence.node.alias = "${__field.labels.node}" || '
    'span.requence.node.id = "${__field.labels.node}" }',
)


def _variables(*extra: dict[str, Any], tasks: bool = True) -> dict[str, Any]:
    """The variables; `tasks` adds the traces datasource and the task name (task dashboards)."""
    return {
        "list": [
            datasource_variable("datasource", "Data source", "prometheus"),
            *([datasource_variable("traces", "Traces", "tempo")] if tasks else []),
            # Clusters and namespaces that run an exporter (empty where the label is absent).
            query_variable("cluster", "Cluster", "requence_exporter_build_info", "cluster"),
            query_variable(
                "namespace",
                "Namespace",
                'requence_exporter_build_info{cluster=~"$cluster"}',
                "namespace",
            ),
            # All means the jobs that run an exporter, never every job Prometheus scrapes.
            query_variable(
                "job",
                "Job",
                'requence_exporter_build_info{cluster=~"$cluster", namespace=~"$namespace"}',
                "job",
                all_value=None,
            ),
            *(
                [
                    query_variable(
                        "task_name",
                        "Task",
                        f"requence_tasks_started_total{{{EXPORTER}}}",
                        "task_name",
                    )
                ]
                if tasks
                else []
            ),
            *extra,
        ]
    }


def _dashboard(uid: str, title: str, description: str, board: Board, **extra: Any) -> Any:
    return {
        "description": description,
        "editable": True,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["requence"],
                "title": "Requence",
                "type": "dashboards",
            }
        ],
        "panels": board.panels,
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["requence"],
        "templating": _variables(*extra.pop("variables", ()), tasks=extra.pop("tasks", True)),
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }


def _quantiles(
    buckets: str, selector: str, by: str = "", *, exemplar: bool = True
) -> list[dict[str, Any]]:
    group = f"{by}, le" if by else "le"
    return [
        target(
            f"histogram_quantile({q}, sum by ({group}) (rate({buckets}{{{selector}}}[{RI}])))",
            f"{{{{{by}}}}} {name}" if by else name,
            exemplar=exemplar,
        )
        for name, q in QUANTILES
    ]


def tasks_dashboard() -> Any:
    """ "Requence / Tasks": throughput, outcomes, error ratio, durations, worst tasks."""
    b = Board()
    b.row("Overview")
    b.add(
        stat(
            "Tasks started",
            "Tasks that began (taskStart) per second, all selected task names together.",
            [target(f"sum(rate(requence_tasks_started_total{{{TASKS}}}[{RI}]))", "started")],
            "ops",
        ),
        6,
        4,
    )
    b.add(
        stat(
            "Error ratio",
            "Errored / (ended + errored) tasks, all selected task names together: the SLO's "
            "ratio (aborted tasks were cancelled from outside and count as neither).",
            [
                target(
                    f"sum(rate(requence_tasks_errored_total{{{TASKS}}}[{RI}]))\n"
                    f"/ ({sum_rates(FINISHED_TASKS[:2], '', RI, f'{{{TASKS}}}')} > 0)",
                    "error ratio",
                )
            ],
            "percentunit",
        ),
        6,
        4,
    )
    b.add(
        stat(
            "In progress",
            "Tasks started and not yet finished, as the exporter tracks them now.",
            [target(f"sum(requence_tasks_in_progress{{{TASKS}}})", "in progress")],
            "short",
        ),
        6,
        4,
    )
    b.add(
        stat(
            "Aborted",
            "Tasks aborted (taskAborted) per second.",
            [target(f"sum(rate(requence_tasks_aborted_total{{{TASKS}}}[{RI}]))", "aborted")],
            "ops",
            steps=[("green", None), ("orange", 0.001)],
        ),
        6,
        4,
    )
    b.row("Throughput and outcomes")
    b.add(
        timeseries(
            "Tasks by outcome",
            "Per second: tasks started, and tasks finished by outcome (taskEnd = ended, "
            "taskError = errored, taskAborted = aborted).",
            [
                target(
                    f"sum(rate(requence_tasks_{kind}_total{{{TASKS}}}[{RI}]))",
                    kind,
                )
                for kind in ("started", "ended", "errored", "aborted")
            ],
            "ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Tasks started by task name",
            "Per second, by task name: which workflows carry the load.",
            [
                target(
                    f"sum by (task_name) (rate(requence_tasks_started_total{{{TASKS}}}[{RI}]))",
                    "{{task_name}}",
                )
            ],
            "ops",
            stack=True,
        ),
        12,
        8,
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
        12,
        8,
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
        12,
        8,
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
        24,
        8,
    )
    b.row("Duration")
    b.add(
        timeseries(
            "Task duration percentiles",
            "taskStart to the terminal update (server timestamps), all outcomes. Exemplars "
            "link a data point to the trace of one task.",
            _quantiles(TASK_BUCKETS, TASKS),
            "s",
        ),
        12,
        8,
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
        12,
        8,
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
        24,
        8,
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
        24,
        8,
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
        12,
        8,
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
        12,
        8,
    )
    return _dashboard(
        "requence-tasks",
        "Requence / Tasks",
        "Requence tasks followed through the watch-all stream: throughput, outcomes, "
        "error ratio, durations.",
        b,
    )


def nodes_dashboard() -> Any:
    """ "Requence / Nodes": node attempts, errors, defers and retries, durations, worst nodes."""
    b = Board()
    b.row("Attempts and outcomes")
    b.add(
        timeseries(
            "Node attempts by outcome",
            "Per second: node attempts started (nodeStart), and finished as ended (nodeEnd), "
            "errored (nodeError) or deferred (nodeDefer).",
            [
                target(f"sum(rate(requence_nodes_{kind}_total{{{NODES}}}[{RI}]))", kind)
                for kind in ("started", "ended", "errored", "deferred")
            ],
            "ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Node error ratio (alerting view)",
            f"Errored / finished node attempts (ended + errored + deferred) over {W}, per "
            "job and node: the recorded ratio that RequenceNodeErrorsHigh evaluates against "
            "its threshold (set with the rules: prometheusRule.thresholds in the chart).",
            [
                target(
                    f"node:requence_nodes_error_ratio:rate{W}{{{NODES}}}",
                    "{{task_name}} / {{node}} ({{job}})",
                )
            ],
            "percentunit",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Errors by node",
            "nodeError updates per second, per task name and node.",
            [
                target(
                    "sum by (task_name, node, node_type) "
                    f"(rate(requence_nodes_errored_total{{{NODES}}}[{RI}]))",
                    "{{task_name}} / {{node}}",
                )
            ],
            "ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Retries: defers by node",
            "nodeDefer updates per second, per node. Requence defers a node when it waits "
            "for a retry, and a later attempt of the same node follows, so this is the retry "
            "rate as the stream shows it (retries after a nodeError appear in 'Attempts per "
            "completed node').",
            [
                target(
                    "sum by (task_name, node, node_type) "
                    f"(rate(requence_nodes_deferred_total{{{NODES}}}[{RI}]))",
                    "{{task_name}} / {{node}}",
                )
            ],
            "ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Attempts per completed node",
            "Node attempts started divided by attempts that ended (nodeEnd), per node. 1 means "
            "every attempt succeeded first time; 1.5 means one retry or failure per two "
            "completions.",
            [
                target(
                    "sum by (task_name, node) "
                    f"(rate(requence_nodes_started_total{{{NODES}}}[{RI}]))\n"
                    "/ (sum by (task_name, node) "
                    f"(rate(requence_nodes_ended_total{{{NODES}}}[{RI}])) > 0)",
                    "{{task_name}} / {{node}}",
                )
            ],
            "short",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Nodes in progress",
            "Node attempts started and not yet finished, per task name and node.",
            [
                target(
                    f"sum by (task_name, node) (requence_nodes_in_progress{{{NODES}}})",
                    "{{task_name}} / {{node}}",
                )
            ],
            "short",
            stack=True,
        ),
        12,
        8,
    )
    b.row("Duration")
    b.add(
        timeseries(
            "Node attempt duration percentiles",
            "nodeStart to the first of nodeEnd, nodeError, nodeDefer or the task's end, all "
            "outcomes. Exemplars link to the trace of one attempt.",
            _quantiles(NODE_BUCKETS, NODES),
            "s",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Node attempt duration p95 by node type",
            "95th percentile per node type (service, logic, or, reference).",
            [
                target(
                    "histogram_quantile(0.95, sum by (node_type, le) "
                    f"(rate({NODE_BUCKETS}{{{NODES}}}[{RI}])))",
                    "{{node_type}}",
                    exemplar=True,
                )
            ],
            "s",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Node attempt duration p95 by node",
            "95th percentile per task name and node; the data link opens that node's traces.",
            [
                target(
                    "histogram_quantile(0.95, sum by (task_name, node, le) "
                    f"(rate({NODE_BUCKETS}{{{NODES}}}[{RI}])))",
                    "{{task_name}} / {{node}}",
                    exemplar=True,
                )
            ],
            "s",
            links=[NODE_TRACES],
        ),
        24,
        8,
    )
    b.row("Worst nodes")
    b.add(
        bargauge(
            "Slowest nodes (p95)",
            "The 10 nodes with the highest 95th percentile attempt duration over the selected "
            "time range, like 'Most failing nodes' beside it.",
            [
                target(
                    "topk(10, histogram_quantile(0.95, sum by (task_name, node, le) "
                    f"(rate({NODE_BUCKETS}{{{NODES}}}[$__range]))))",
                    "{{task_name}} / {{node}}",
                    instant=True,
                )
            ],
            "s",
        ),
        12,
        8,
    )
    b.add(
        bargauge(
            "Most failing nodes",
            "The 10 nodes with the most nodeError updates in the selected time range "
            "(rounded: increase() extrapolates to the range's edges).",
            [
                target(
                    "topk(10, round(sum by (task_name, node, node_type) "
                    f"(increase(requence_nodes_errored_total{{{NODES}}}[$__range]))))",
                    "{{task_name}} / {{node}}",
                    instant=True,
                )
            ],
            "short",
        ),
        12,
        8,
    )
    node_metric = f"requence_nodes_started_total{{{TASKS}}}"
    return _dashboard(
        "requence-nodes",
        "Requence / Nodes",
        "Requence node attempts per task name, node and node type: outcomes, retries, "
        "durations, worst nodes.",
        b,
        variables=(
            query_variable("node_type", "Node type", node_metric, "node_type"),
            query_variable(
                "node",
                "Node",
                f'requence_nodes_started_total{{{TASKS}, node_type=~"$node_type"}}',
                "node",
            ),
        ),
    )


def _per_instance(expr: str) -> dict[str, Any]:
    """An instant query of a per-instance value: only series that exist now are shown."""
    return target(expr, "{{job}} {{instance}}", instant=True)


def exporter_dashboard() -> Any:
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
        6,
        4,
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
        6,
        4,
    )
    b.add(
        stat(
            "Tracked tasks",
            "Tasks the exporter holds in memory (started, not yet finished or evicted), all "
            "shards together.",
            [target(f"sum(requence_exporter_tracked_tasks{{{EXPORTER}}})", "tracked")],
            "short",
        ),
        6,
        4,
    )
    b.add(
        stat(
            "Scrape up",
            "Prometheus' own view, now: 1 when the last scrape of the instance succeeded.",
            [_per_instance(f"up{{{EXPORTER}}}")],
            "none",
            steps=[("red", None), ("green", 1)],
        ),
        6,
        4,
    )
    b.add(
        timeseries(
            "Update lag percentiles",
            "Arrival time minus the update's server timestamp, over the updates the selected "
            "instances processed (each shard its share): how far behind Requence the "
            "exporter is. High right after a start with --since (replay).",
            _quantiles("requence_exporter_update_lag_seconds_bucket", EXPORTER, exemplar=False),
            "s",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Reconnects by reason",
            "Reconnects of the watch-all stream per second, by reason, all instances "
            "together (each holds its own connection).",
            [
                target(
                    "sum by (reason) "
                    f"(rate(requence_exporter_reconnects_total{{{EXPORTER}}}[{RI}]))",
                    "{{reason}}",
                )
            ],
            "ops",
        ),
        12,
        8,
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
        12,
        8,
    )
    b.add(
        timeseries(
            "Stream position",
            "Position of the last update each instance read; it only goes up while updates "
            "flow, and the shards of one stream show the same position.",
            [target(f"requence_exporter_stream_position{{{EXPORTER}}}", "{{job}} {{instance}}")],
            "none",
        ),
        12,
        8,
    )
    b.row("Updates")
    b.add(
        timeseries(
            "Updates by type",
            "Valid updates processed per second, by update type, all shards together (each "
            "processes its share).",
            [
                target(
                    f"sum by (type) (rate(requence_exporter_updates_total{{{EXPORTER}}}[{RI}]))",
                    "{{type}}",
                )
            ],
            "ops",
            stack=True,
        ),
        12,
        8,
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
        12,
        8,
    )
    b.row("Task tracking")
    b.add(
        timeseries(
            "Tracked tasks",
            "Tasks held in memory per instance; bounded by --max-tracked-tasks.",
            [target(f"requence_exporter_tracked_tasks{{{EXPORTER}}}", "{{job}} {{instance}}")],
            "short",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Evicted and incomplete tasks",
            "Per second: tasks evicted without a terminal update (--task-ttl or "
            "--max-tracked-tasks), tasks first seen without their taskStart, and durations "
            "dropped as negative; all shards together.",
            [
                target(
                    f"sum(rate(requence_exporter_{name}_total{{{EXPORTER}}}[{RI}]))",
                    name.replace("_", " "),
                )
                for name in ("evicted_tasks", "incomplete_tasks", "negative_durations")
            ],
            "ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Label overflow by label",
            "Label values folded into __other__ per second because a label reached "
            "--max-label-values distinct values.",
            [
                target(
                    "sum by (label) "
                    f"(rate(requence_exporter_label_overflow_total{{{EXPORTER}}}[{RI}]))",
                    "{{label}}",
                )
            ],
            "ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Spans exported and dropped",
            "Spans per second handed to the OTLP exporter, and spans lost (queue full or "
            "export failed). Both stay at zero when tracing is off.",
            [
                target(
                    f"sum(rate(requence_exporter_spans_{kind}_total{{{EXPORTER}}}[{RI}]))",
                    kind,
                )
                for kind in ("exported", "dropped")
            ],
            "ops",
        ),
        12,
        8,
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
        8,
        8,
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
        8,
        8,
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
        8,
        8,
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
        12,
        4,
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
        12,
        4,
    )
    return _dashboard(
        "requence-exporter",
        "Requence exporter",
        "Health of the requence-exporter itself: stream, lag, skipped updates, task "
        "tracking, label overflow, spans, process.",
        b,
        tasks=False,
    )


DASHBOARDS = {
    "requence-tasks.json": tasks_dashboard,
    "requence-nodes.json": nodes_dashboard,
    "requence-exporter.json": exporter_dashboard,
}
