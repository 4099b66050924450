"""The update model every stage shares: update types, `Node`, `Update`, skip reasons, and the
domain of every value an update carries.

`exporter.requence.decode` builds these from raw events and `exporter.core.snapshot` from the
state file; both check each value against the bounds below where it enters, so nothing past
them meets a time that cannot be rendered or a text without a size. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import blake2b
from typing import Final, NamedTuple

__all__ = [
    "CUT_FIELDS",
    "LAST_TIMESTAMP",
    "MAX_ATTEMPTS_PER_TASK",
    "MAX_FUTURE_SECONDS",
    "MAX_MESSAGE_BYTES",
    "MAX_NODES_PER_TASK",
    "MAX_POSITION",
    "MAX_TEXT_BYTES",
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
    "cut_id",
    "cut_text",
    "over_bytes",
    "parse_timestamp",
    "timestamp_in_range",
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
    "future_timestamp",
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


# -- the domain of each value ------------------------------------------------------------------

# Times: seconds since the epoch from 1970 up to the last second `datetime` can render
# (9999-12-31T23:59:59Z). No server clock writes earlier; later cannot be shown at all.
LAST_TIMESTAMP: Final = 253402300799.999
# An update's time may run ahead of its arrival by clock skew, never by more than this: a
# server clock an hour fast is broken, and a later time would stretch durations and the TTL.
MAX_FUTURE_SECONDS: Final = 3600.0
# Ids, task names, node aliases and node types: label values and span attributes. Real ones
# are UUIDs and names a person typed; a longer one is cut (and counted).
MAX_TEXT_BYTES: Final = 256
# Error messages and defer reasons (span statuses and events, the failure ring).
MAX_MESSAGE_BYTES: Final = 2048
# One task's state: distinct nodes it ran, and finished attempts kept for its spans. A real
# workflow runs tens of nodes; an endless task must not grow past what `--max-tracked-tasks`
# promises (see docs/reliability.md for the bytes these allow).
MAX_NODES_PER_TASK: Final = 256
MAX_ATTEMPTS_PER_TASK: Final = 512
# The fields whose cut is counted, by the label value they are counted under.
CUT_FIELDS: Final = (
    "task_id",
    "root_task_id",
    "update_id",
    "task_name",
    "node_id",
    "node_alias",
    "node_type",
    "message",
)
_HASH_BYTES: Final = 8


def timestamp_in_range(seconds: float) -> bool:
    """Whether `seconds` is a time from 1970 to year 9999 (and so can be rendered)."""
    return 0.0 <= seconds <= LAST_TIMESTAMP  # also False for NaN


def parse_timestamp(value: object) -> float | None:
    """ISO 8601 text (offset or `Z`; naive means UTC) or epoch milliseconds, to epoch seconds;
    None for anything else, and for times before 1970 or past year 9999 in UTC (an offset can
    carry a time that parses out of the range `datetime` renders)."""
    seconds: float
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0
    else:
        return None
    return seconds if timestamp_in_range(seconds) else None  # NaN and infinities too


def over_bytes(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes in UTF-8."""
    size = len(text)
    if size > limit:
        return True
    # A character takes at most 4 bytes: only a text near the limit needs encoding.
    return size * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def cut_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def cut_id(text: str, limit: int) -> str:
    """An id of at most `limit` bytes that stays distinct: a longer one becomes its first bytes,
    `~` and a hash of the whole, so two long ids with one prefix remain two ids."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    digest = blake2b(data, digest_size=_HASH_BYTES).hexdigest()
    return data[: limit - 2 * _HASH_BYTES - 1].decode("utf-8", "ignore") + "~" + digest
