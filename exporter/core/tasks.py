"""What the tracker holds and hands its observers: task state, attempts, finished tasks.

Also the `Observer` protocol the sinks implement and the tracker's counters.
"""

from __future__ import annotations

from typing import Final, NamedTuple, Protocol

from exporter.core.updates import Node, Update

__all__ = ["FinishedTask", "NodeAttempt", "Observer", "TaskState", "TrackerStats"]


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

    __slots__ = ("clamped", "evicted", "incomplete")

    def __init__(self) -> None:
        self.incomplete = 0  # tasks first seen without their taskStart
        self.evicted = 0  # tasks dropped without a terminal update
        self.clamped = 0  # durations whose end came before their start, recorded as zero
