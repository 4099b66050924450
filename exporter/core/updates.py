"""The update model every stage shares: update types, `Node`, `Update`, skip reasons.

`exporter.requence.decode` builds these from raw events; nothing here does I/O.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "MAX_POSITION",
    "NODE_DEFER",
    "NODE_END",
    "NODE_ERROR",
    "NODE_START",
    "NODE_TYPES",
    "NODE_UPDATE",
    "SKIP_REASONS",
    "TASK_ABORTED",
    "TASK_END",
    "TASK_ERROR",
    "TASK_START",
    "TASK_TERMINAL_TYPES",
    "UPDATE_TYPES",
    "Node",
    "Update",
]


TASK_START: Final = "taskStart"
NODE_START: Final = "nodeStart"
NODE_UPDATE: Final = "nodeUpdate"
NODE_ERROR: Final = "nodeError"
NODE_DEFER: Final = "nodeDefer"
NODE_END: Final = "nodeEnd"
TASK_END: Final = "taskEnd"
TASK_ERROR: Final = "taskError"
TASK_ABORTED: Final = "taskAborted"

UPDATE_TYPES: Final = (
    TASK_START,
    NODE_START,
    NODE_UPDATE,
    NODE_ERROR,
    NODE_DEFER,
    NODE_END,
    TASK_END,
    TASK_ERROR,
    TASK_ABORTED,
)
NODE_TYPES: Final = frozenset({NODE_START, NODE_UPDATE, NODE_ERROR, NODE_DEFER, NODE_END})
TASK_TERMINAL_TYPES: Final = frozenset({TASK_END, TASK_ERROR, TASK_ABORTED})


SKIP_REASONS: Final = (
    "malformed_json",
    "invalid_utf8",
    "not_object",
    "unknown_type",
    "missing_task_id",
    "bad_timestamp",
    "bad_field",
    "duplicate_position",
    "oversized",
    "position_out_of_range",
)


class Node(NamedTuple):
    """The node an update is about."""

    id: str
    type: str
    alias: str | None

    @property
    def label(self) -> str:
        """The node's name for humans and labels: its alias, else its id."""
        return self.alias or self.id


class Update(NamedTuple):
    """One valid update. `timestamp` is server time in seconds since the epoch."""

    position: int
    type: str
    task_id: str
    timestamp: float
    name: str | None
    root_id: str | None
    node: Node | None
    message: str | None
    update_id: str | None


# The largest position kept: the state file and /status carry positions as 64-bit integers.
MAX_POSITION: Final = 2**63 - 1
