"""What the tracker holds and hands its observers: task state, attempts, finished tasks.

Also the `Observer` protocol the sinks implement and the tracker's counters.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple, Protocol

from exporter.core.updates import Node, Update

__all__ = [
    "FinishedTask",
    "NodeAttempt",
    "Observer",
    "TaskRow",
    "TaskState",
    "TrackerStats",
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


# A task's state copied for the state file: nothing in it changes after the copy, so a thread
# may encode it while the tracker goes on (id, name, root, start, incomplete, last seen,
# attempts by node id, open attempts, finished attempts).
TaskRow = tuple[
    str,
    str | None,
    str | None,
    float,
    bool,
    float,
    dict[str, int],
    tuple[tuple[Node, int, float], ...],
    tuple[NodeAttempt, ...],
]


def task_record(row: TaskRow) -> dict[str, Any]:
    """A task's row as the state file holds it (read back by `exporter.core.snapshot`)."""
    task_id, name, root, start, incomplete, last_seen, attempts, opened, finished = row
    return {
        "id": task_id,
        "name": name,
        "root": root,
        "start": start,
        "incomplete": incomplete,
        "last_seen": last_seen,
        "attempts": attempts,
        "open": [[n.id, n.type, n.alias, k, s] for n, k, s in opened],
        "finished": [
            [a.node.id, a.node.type, a.node.alias, a.attempt, a.start, a.end, a.outcome, a.message]
            for a in finished
        ],
    }


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
        self.finished: list[NodeAttempt] = []
        # The tracker's snapshot generation this task was last copied in (`Tracker.snapshot`).
        self.saved = 0

    def row(self) -> TaskRow:
        """A copy of this task that later updates leave alone."""
        return (
            self.task_id,
            self.name,
            self.root_id,
            self.start,
            self.incomplete,
            self.last_seen,
            self.attempts.copy(),
            tuple(self.open.values()),
            tuple(self.finished),
        )

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
