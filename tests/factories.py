"""Plain update and failure values for tests (the core takes time as data, so no clock is
needed), and the protocol's update types."""

from __future__ import annotations

from exporter.core.updates import Node, Update
from exporter.serving.failures import Failure

SERVICE = Node("n-fetch", "service", "fetch")
LOGIC = Node("n-check", "logic", "check")
REF = Node("n-sub", "reference", None)
# Every update type of the watch-all stream, and those that end a task.
TERMINAL = {"taskEnd", "taskError", "taskAborted"}
ALL_TYPES = {
    "taskStart",
    "nodeStart",
    "nodeUpdate",
    "nodeError",
    "nodeDefer",
    "nodeEnd",
    *TERMINAL,
}


class Script:
    """Builds updates with increasing positions."""

    def __init__(self) -> None:
        self.position = 0
        self.updates: list[Update] = []

    def add(
        self,
        kind: str,
        task_id: str,
        ts: float,
        *,
        node: Node | None = None,
        name: str | None = "invoice",
        root: str | None = None,
        message: str | None = None,
    ) -> Update:
        """Append one update."""
        self.position += 1
        update = Update(
            self.position, kind, task_id, ts, name, root, node, message, f"u-{self.position}"
        )
        self.updates.append(update)
        return update


FIELDS = (
    "time",
    "kind",
    "task_id",
    "task_name",
    "root_task_id",
    "node",
    "node_id",
    "node_type",
    "reason",
    "duration",
    "trace_id",
    "span_id",
)


def vars_of(item: Failure) -> dict[str, object]:
    """A failure's constructor arguments."""
    return {name: getattr(item, name) for name in FIELDS}
