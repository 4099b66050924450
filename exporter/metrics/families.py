"""The metric families the exporter serves: names, help, types, labels and buckets.

The names are a contract (docs/metrics.md): add, never rename.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "DEFAULT_LAG_BUCKETS",
    "DEFAULT_LOOP_LAG_BUCKETS",
    "DEFAULT_NODE_BUCKETS",
    "DEFAULT_TASK_BUCKETS",
    "FAMILIES",
    "Family",
]


# Workflows take milliseconds to hours; nodes are usually shorter than their tasks.
# fmt: off
DEFAULT_TASK_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
                               3600, 7200, 14400, 43200, 86400)
DEFAULT_NODE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                               300, 900, 3600, 14400)
# Up to a day, so that a --since replay and a lag alert above 5 minutes stay measurable.
DEFAULT_LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                              300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
# A probe times out after a second or so: the loop's lateness matters from milliseconds up.
DEFAULT_LOOP_LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                   2.5, 5, 10)
# fmt: on


TASK: Final = ("task_name",)
NODE: Final = ("task_name", "node", "node_type")
# Counters created at zero when their label set is first seen, so that rate() and increase()
# see the first count of each (a series born at 1 hides its first increment from them).
TASK_COUNTERS: Final = ("taskStart", "taskEnd", "taskError", "taskAborted")
NODE_COUNTERS: Final = ("nodeStart", "nodeEnd", "nodeError", "nodeDefer")


class Family(NamedTuple):
    """One metric's definition: name (counters without `_total`), kind, help and labels."""

    name: str
    kind: str  # counter | gauge | histogram | info
    help: str
    labels: tuple[str, ...]


# Update counters, by the update type they count.
UPDATE_FAMILIES: Final = {
    "taskStart": Family("requence_tasks_started", "counter", "taskStart updates seen.", TASK),
    "taskEnd": Family("requence_tasks_ended", "counter", "taskEnd updates seen.", TASK),
    "taskError": Family("requence_tasks_errored", "counter", "taskError updates seen.", TASK),
    "taskAborted": Family("requence_tasks_aborted", "counter", "taskAborted updates seen.", TASK),
    "nodeStart": Family("requence_nodes_started", "counter", "nodeStart updates seen.", NODE),
    "nodeEnd": Family("requence_nodes_ended", "counter", "nodeEnd updates seen.", NODE),
    "nodeError": Family("requence_nodes_errored", "counter", "nodeError updates seen.", NODE),
    "nodeDefer": Family("requence_nodes_deferred", "counter", "nodeDefer updates seen.", NODE),
    "nodeUpdate": Family("requence_node_updates", "counter", "nodeUpdate updates seen.", NODE),
}
TASK_DURATION: Final = Family(
    "requence_task_duration_seconds",
    "histogram",
    "Task duration from taskStart to its terminal update (server time); only when the start "
    "was seen.",
    (*TASK, "outcome"),
)
NODE_DURATION: Final = Family(
    "requence_node_duration_seconds",
    "histogram",
    "Node attempt duration from nodeStart to nodeEnd, nodeError, nodeDefer or the task's end "
    "(interrupted).",
    (*NODE, "outcome"),
)
TASKS_IN_PROGRESS: Final = Family(
    "requence_tasks_in_progress", "gauge", "Tasks started and not yet finished.", TASK
)
NODES_IN_PROGRESS: Final = Family(
    "requence_nodes_in_progress", "gauge", "Node attempts started and not yet finished.", NODE
)
OLDEST_IN_PROGRESS: Final = Family(
    "requence_tasks_oldest_in_progress_start_timestamp_seconds",
    "gauge",
    "Start (server time) of the oldest task in progress, per task name; absent when none.",
    TASK,
)
_X = "requence_exporter_"
UPDATES: Final = Family(f"{_X}updates", "counter", "Valid updates processed.", ("type",))
SKIPPED: Final = Family(
    f"{_X}updates_skipped", "counter", "Updates skipped, by reason.", ("reason",)
)
INCOMPLETE: Final = Family(
    f"{_X}incomplete_tasks", "counter", "Tasks first seen without their taskStart.", ()
)
EVICTED: Final = Family(
    f"{_X}evicted_tasks", "counter", "Tasks dropped without a terminal update (TTL or cap).", ()
)
NEGATIVE: Final = Family(
    f"{_X}negative_durations",
    "counter",
    "Durations whose end came before their start, recorded as zero.",
    (),
)
TRACKED: Final = Family(f"{_X}tracked_tasks", "gauge", "Tasks held in memory.", ())
CONNECTED: Final = Family(
    f"{_X}stream_connected", "gauge", "1 while the watch-all stream is connected.", ()
)
RECONNECTS: Final = Family(
    f"{_X}reconnects", "counter", "Stream connections lost or refused, by reason.", ("reason",)
)
POSITION: Final = Family(
    f"{_X}stream_position", "gauge", "Position of the last update processed.", ()
)
LAST_UPDATE: Final = Family(
    f"{_X}last_update_timestamp_seconds",
    "gauge",
    "Server timestamp of the last update read from the stream (absent until one is known).",
    (),
)
LAG: Final = Family(
    f"{_X}update_lag_seconds",
    "histogram",
    "Arrival time minus the update's server timestamp.",
    (),
)
OVERFLOW: Final = Family(
    f"{_X}label_overflow",
    "counter",
    "Observations whose label value was folded into __other__, by label.",
    ("label",),
)
VALUES_CUT: Final = Family(
    f"{_X}values_cut",
    "counter",
    "Texts from the stream or the state file cut to their byte bound, by field.",
    ("field",),
)
ATTEMPTS_DROPPED: Final = Family(
    f"{_X}attempts_dropped",
    "counter",
    "Node attempts left out of their task's state, by reason: nodes_per_task (not timed) or "
    "attempts_per_task (timed, no span).",
    ("reason",),
)
CONNECTIONS_REFUSED: Final = Family(
    f"{_X}http_connections_refused",
    "counter",
    "HTTP connections refused or dropped, by reason: max_connections, "
    "max_connections_per_client, replaced_by_newer (the longest waiting, closed for a new one) "
    "or out_of_file_descriptors (accept() failed).",
    ("reason",),
)
LOOP_LAG: Final = Family(
    f"{_X}event_loop_lag_seconds",
    "histogram",
    "How late the stream process's event loop ran a timer due every few hundred milliseconds.",
    (),
)
SPANS_EXPORTED: Final = Family(f"{_X}spans_exported", "counter", "Spans exported over OTLP.", ())
SPANS_DROPPED: Final = Family(
    f"{_X}spans_dropped", "counter", "Spans dropped (back-end failing or too slow).", ()
)
STATE_SAVE_FAILURES: Final = Family(
    f"{_X}state_save_failures", "counter", "State file saves that failed.", ()
)
BUILD_INFO: Final = Family(
    f"{_X}build_info", "gauge", "Always 1; labels carry the version.", ("version", "python")
)

FAMILIES: Final = (
    *UPDATE_FAMILIES.values(),
    TASK_DURATION,
    NODE_DURATION,
    TASKS_IN_PROGRESS,
    NODES_IN_PROGRESS,
    OLDEST_IN_PROGRESS,
    UPDATES,
    SKIPPED,
    INCOMPLETE,
    EVICTED,
    NEGATIVE,
    TRACKED,
    CONNECTED,
    RECONNECTS,
    POSITION,
    LAST_UPDATE,
    LAG,
    OVERFLOW,
    SPANS_EXPORTED,
    SPANS_DROPPED,
    STATE_SAVE_FAILURES,
    BUILD_INFO,
    VALUES_CUT,
    ATTEMPTS_DROPPED,
    LOOP_LAG,
    CONNECTIONS_REFUSED,
)
