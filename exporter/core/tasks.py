"""What the tracker holds and hands its observers: task state, attempts, finished tasks.

Also the `Observer` protocol the sinks implement and the tracker's counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Final, NamedTuple, Protocol

import orjson

from exporter.core.updates import Node, Update

__all__ = [
    "FinishedTask",
    "NodeAttempt",
    "Observer",
    "TaskRow",
    "TaskState",
    "TrackerStats",
    "progress",
    "task_record",
]


UNNAMED: Final = "unnamed"


class NodeAttempt(NamedTuple):
    """One node attempt: nodeStart to the first of nodeEnd, nodeError, nodeDefer or task end."""

    node: Node
    attempt: int  # 1 for the first start of this node in its task, 2 for the retry, ...
    start: float
    end: float
    outcome: str  # ended | errored | deferred | interrupted
    message: str | None  # the error message or defer reason


class FinishedTask(NamedTuple):
    """A task that reached its terminal update, or was evicted without one."""

    task_id: str
    name: str | None
    root_id: str | None
    start: float  # the taskStart time, or the first update seen when incomplete
    end: float
    outcome: str  # ended | errored | aborted | evicted
    message: str | None  # the taskError or taskAborted reason
    incomplete: bool  # its taskStart was never seen
    attempts: tuple[NodeAttempt, ...]  # every finished attempt, in order of finishing

    @property
    def evicted(self) -> bool:
        """Whether the task left without a terminal update."""
        return self.outcome == "evicted"


# A task's state as the state file holds it: one JSON object, encoded when it is copied, so
# nothing in it changes afterwards and a thread may write it while the tracker goes on. Bytes,
# not a structure of tuples and dicts: a checkpoint of 100,000 tasks then leaves nothing behind
# for the garbage collector to walk (copies that outlive a save were promoted to the oldest
# generation, and set off a full collection at every checkpoint).
TaskRow = bytes


def task_record(row: TaskRow) -> dict[str, Any]:
    """A task's row as a JSON-ready dict (read back by `exporter.core.snapshot`)."""
    record: dict[str, Any] = orjson.loads(row)
    return record


class TaskState:
    """A task in flight. Owned by the tracker; observers read it and never keep it."""

    __slots__ = (
        "attempts",
        "finished",
        "incomplete",
        "last_seen",
        "name",
        "open",
        "root_id",
        "saved",
        "start",
        "task_id",
    )

    def __init__(
        self, task_id: str, name: str | None, root_id: str | None, start: float, incomplete: bool
    ) -> None:
        self.task_id = task_id
        self.name = name
        self.root_id = root_id
        self.start = start
        self.incomplete = incomplete
        self.last_seen = start
        # node id -> (node, attempt number, start time) of the attempt now running
        self.open: dict[str, tuple[Node, int, float]] = {}
        # node id -> how many times it started in this task
        self.attempts: dict[str, int] = {}
        # Finished attempts kept for spans (only with traces on): a tuple, so a task without
        # any holds the shared empty one rather than a list of its own (56 bytes a task).
        self.finished: tuple[NodeAttempt, ...] = ()
        # The tracker's snapshot generation this task was last copied in (`Tracker.snapshot`).
        self.saved = 0

    def row(self) -> TaskRow:
        """This task as the state file holds it, encoded now."""
        return orjson.dumps(
            {
                "id": self.task_id,
                "name": self.name,
                "root": self.root_id,
                "start": self.start,
                "incomplete": self.incomplete,
                "last_seen": self.last_seen,
                "attempts": self.attempts,
                "open": [[n.id, n.type, n.alias, k, s] for n, k, s in self.open.values()],
                "finished": [
                    [a.node.id, a.node.type, a.node.alias, a.attempt, a.start, a.end, a.outcome,
                     a.message]
                    for a in self.finished
                ],
            }
        )  # fmt: skip

    @property
    def label(self) -> str:
        """The task name as a label value."""
        return self.name or UNNAMED


class Observer(Protocol):
    """What a sink receives from the tracker."""

    def on_update(self, update: Update, task: TaskState) -> None:
        """Called for every valid update, after the task's state took it in."""

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        """A node attempt finished (not called for attempts cut short by eviction)."""

    def on_task_finished(self, task: FinishedTask) -> None:
        """A task reached its terminal update or was evicted."""


class FailureHook(Protocol):
    """What the tracker hands on about failures only (the recent-failures view)."""

    def on_node_error(self, update: Update, task: TaskState, attempt: NodeAttempt | None) -> None:
        """A nodeError, after the observers, with the attempt it closed (None without one)."""

    def on_task_failed(self, task: FinishedTask) -> None:
        """A task that errored or was aborted, after the observers heard it finish."""


class TrackerStats:
    """Running totals the tracker keeps about itself (exposed as self-metrics)."""

    __slots__ = ("attempts_dropped", "clamped", "evicted", "incomplete", "nodes_dropped")

    def __init__(self) -> None:
        self.incomplete = 0  # tasks first seen without their taskStart
        self.evicted = 0  # tasks dropped without a terminal update
        self.clamped = 0  # durations whose end came before their start, recorded as zero
        # Node attempts left out of a task's state: a node beyond MAX_NODES_PER_TASK distinct
        # ones (counted, not timed), a finished attempt beyond MAX_ATTEMPTS_PER_TASK (timed, no
        # span).
        self.nodes_dropped = 0
        self.attempts_dropped = 0


def progress(
    tasks: Iterable[TaskState],
) -> tuple[Counter[str], Counter[tuple[str, str, str]], dict[str, float]]:
    """Tasks in flight by task name, open node attempts by (task name, node, node type), and
    the start of the oldest task in flight per task name, in the one walk a scrape makes over
    the tasks anyway (they are ordered by update, not by start)."""
    # Per task name [count, oldest start]: one lookup per task for both.
    names: dict[str, list[float]] = {}
    nodes: Counter[tuple[str, str, str]] = Counter()
    for task in tasks:
        label = task.label
        entry = names.get(label)
        start = task.start
        if entry is None:
            names[label] = [1.0, start]
        else:
            entry[0] += 1.0
            if start < entry[1]:  # noqa: PLR1730 (min() is a call, this a comparison)
                entry[1] = start
        if task.open:
            for node, _number, _start in task.open.values():
                nodes[(label, node.label, node.type)] += 1
    counts = Counter({label: int(entry[0]) for label, entry in names.items()})
    oldest = {label: entry[1] for label, entry in names.items()}
    return counts, nodes, oldest
