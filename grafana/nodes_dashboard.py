"""The "Requence / Nodes" dashboard: node attempts, errors, defers and retries, durations,
worst nodes."""

from __future__ import annotations

from typing import Any, Final

from exporter.metrics.alerting.rules import RECORDING_WINDOW
from grafana.board import CHART, CHART_WIDE, NODES, TASKS, Board, dashboard
from grafana.panels import (
    RI,
    bargauge,
    per_second,
    quantiles,
    query_variable,
    target,
    timeseries,
    traces_link,
)

__all__ = ["nodes_dashboard"]

# The window of the recorded ratios the alerts read.
W: Final = RECORDING_WINDOW
NODE_BUCKETS: Final = "requence_node_duration_seconds_bucket"
# A node is known by its task name and its own name; some panels split by its type too.
NODE: Final = "task_name, node"
NODE_AND_TYPE: Final = f"{NODE}, node_type"
# A node span is a child of its task's span: the task name narrows the search to that task's
# node of that name, not every task's node with the same alias.
NODE_TRACES: Final = traces_link(
    "Traces of node ${__field.labels.node} in ${__field.labels.task_name}",
    '{ span.requence.task.name = "${__field.labels.task_name}" } > '
    '{ span.requence.node.alias = "${__field.labels.node}" || '
    'span.requence.node.id = "${__field.labels.node}" }',
)


def nodes_dashboard() -> dict[str, Any]:
    """ "Requence / Nodes": node attempts, errors, defers and retries, durations, worst nodes."""
    b = Board()
    b.row("Attempts and outcomes")
    b.add(
        timeseries(
            "Node attempts by outcome",
            "Per second: node attempts started (nodeStart), and finished as ended (nodeEnd), "
            "errored (nodeError) or deferred (nodeDefer).",
            [
                target(per_second(f"requence_nodes_{kind}_total", NODES), kind)
                for kind in ("started", "ended", "errored", "deferred")
            ],
            "ops",
        ),
        CHART,
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
        CHART,
    )
    b.add(
        timeseries(
            "Errors by node",
            "nodeError updates per second, per task name and node.",
            [
                target(
                    per_second("requence_nodes_errored_total", NODES, NODE_AND_TYPE),
                    "{{task_name}} / {{node}}",
                )
            ],
            "ops",
        ),
        CHART,
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
                    per_second("requence_nodes_deferred_total", NODES, NODE_AND_TYPE),
                    "{{task_name}} / {{node}}",
                )
            ],
            "ops",
        ),
        CHART,
    )
    b.add(
        timeseries(
            "Attempts per completed node",
            "Node attempts started divided by attempts that ended (nodeEnd), per node. 1 means "
            "every attempt succeeded first time; 1.5 means one retry or failure per two "
            "completions.",
            [
                target(
                    f"{per_second('requence_nodes_started_total', NODES, NODE)}\n"
                    f"/ ({per_second('requence_nodes_ended_total', NODES, NODE)} > 0)",
                    "{{task_name}} / {{node}}",
                )
            ],
            "short",
        ),
        CHART,
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
        CHART,
    )
    b.row("Duration")
    b.add(
        timeseries(
            "Node attempt duration percentiles",
            "nodeStart to the first of nodeEnd, nodeError, nodeDefer or the task's end, all "
            "outcomes. Exemplars link to the trace of one attempt.",
            quantiles(NODE_BUCKETS, NODES),
            "s",
        ),
        CHART,
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
        CHART,
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
        CHART_WIDE,
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
        CHART,
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
        CHART,
    )
    node_metric = f"requence_nodes_started_total{{{TASKS}}}"
    return dashboard(
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
