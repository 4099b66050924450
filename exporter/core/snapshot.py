"""The tracker's part of the state file, read back strictly.

A state file is input like any other: every field is checked for its type and domain before the
tracker sees it, so a file with a wrong type is refused as a whole (and set aside by the caller)
rather than crashing at the first update that touches it. Times must be renderable; texts longer
than the stream allows are cut and one task's nodes and attempts are trimmed to the stream's
bounds, each counted as the stream counts them. Restoring keeps at most `max_tasks` tasks, the
most recently updated, and counts the rest as evicted, so an old file cannot outgrow the cap.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from itertools import islice
from typing import Any, Final, NamedTuple

from exporter.core.tasks import NodeAttempt, TaskState
from exporter.core.tracker import RECENTLY_FINISHED, SNAPSHOT_VERSION
from exporter.core.updates import (
    CUT_FIELDS,
    MAX_ATTEMPTS_PER_TASK,
    MAX_MESSAGE_BYTES,
    MAX_NODES_PER_TASK,
    MAX_TEXT_BYTES,
    Node,
    cut_id,
    cut_text,
    over_bytes,
    timestamp_in_range,
)

__all__ = [
    "SNAPSHOT_VERSION",
    "BadSnapshot",
    "RestoredTracker",
    "Trims",
    "bounded_id",
    "check_time",
    "last_seen_of",
    "parse_snapshot",
    "parse_task",
]

_OUTCOMES: Final = frozenset({"ended", "errored", "deferred", "interrupted"})


class BadSnapshot(ValueError):
    """The tracker part of a state file is not one this exporter wrote."""


class Trims:
    """What reading a state file cut or left out, to be counted as the stream's cuts are."""

    __slots__ = ("attempts_dropped", "cut", "nodes_dropped")

    def __init__(self) -> None:
        self.cut: dict[str, int] = dict.fromkeys(CUT_FIELDS, 0)
        self.nodes_dropped = 0
        self.attempts_dropped = 0


class RestoredTracker(NamedTuple):
    """What `parse_snapshot` read: the tasks kept (least recently updated first) and the rest."""

    tasks: OrderedDict[str, TaskState]
    finished_ids: OrderedDict[str, None]
    latest_timestamp: float
    dropped: int  # tasks beyond the cap, left out
    trims: Trims


def _text(value: object, what: str) -> str:
    if type(value) is not str:
        raise BadSnapshot(f"{what} is {type(value).__name__}, not a string")
    return value


def _bounded(value: object, what: str, field: str, trims: Trims) -> str:
    text = _text(value, what)
    limit = MAX_MESSAGE_BYTES if field == "message" else MAX_TEXT_BYTES
    if not over_bytes(text, limit):
        return text
    trims.cut[field] += 1
    return cut_text(text, limit)


def bounded_id(value: object, what: str, field: str, trims: Trims) -> str:
    """A saved id within the stream's byte bound (`cut_id`), its cut counted."""
    text = _text(value, what)
    if not over_bytes(text, MAX_TEXT_BYTES):
        return text
    trims.cut[field] += 1
    return cut_id(text, MAX_TEXT_BYTES)


def _optional(value: object, what: str, field: str, trims: Trims) -> str | None:
    return None if value is None else _bounded(value, what, field, trims)


def _number(value: object, what: str) -> float:
    if type(value) is not float and type(value) is not int:
        raise BadSnapshot(f"{what} is {type(value).__name__}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise BadSnapshot(f"{what} is not finite")
    return number


def check_time(value: object, what: str) -> float:
    """A saved server time: a number from 1970 to year 9999, as the stream's."""
    seconds = _number(value, what)
    if not timestamp_in_range(seconds):
        raise BadSnapshot(f"{what} is not a time from 1970 to 9999")
    return seconds


def _count(value: object, what: str) -> int:
    if type(value) is not int or not 0 < value < 2**31:
        raise BadSnapshot(f"{what} is not an attempt number")
    return value


def _list(value: object, what: str, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        shape = "a list" if length is None else f"a list of {length}"
        raise BadSnapshot(f"{what} is not {shape}")
    return value


def _node(raw: list[Any], what: str, trims: Trims) -> Node:
    return Node(
        bounded_id(raw[0], f"{what} node id", "node_id", trims),
        _bounded(raw[1], f"{what} node type", "node_type", trims),
        _optional(raw[2], f"{what} node alias", "node_alias", trims),
    )


def parse_task(raw: object, trims: Trims) -> TaskState:
    """One saved task, checked, cut and trimmed to the bounds of a task read from the stream;
    raise BadSnapshot."""
    if type(raw) is not dict:
        raise BadSnapshot("a task is not an object")
    try:
        root = raw["root"]
        task = TaskState(
            bounded_id(raw["id"], "task id", "task_id", trims),
            _optional(raw["name"], "task name", "task_name", trims),
            None if root is None else bounded_id(root, "task root", "root_task_id", trims),
            check_time(raw["start"], "task start"),
            _flag(raw["incomplete"]),
        )
        task.last_seen = check_time(raw["last_seen"], "task last_seen")
        attempts = raw["attempts"]
        opened, finished = _list(raw["open"], "open"), _list(raw["finished"], "finished")
    except KeyError as exc:
        raise BadSnapshot(f"a task has no {exc}") from None
    if type(attempts) is not dict:
        raise BadSnapshot("task attempts is not an object")
    # Nodes past the bound are left out as the tracker leaves them out (counted, not timed).
    kept = islice(attempts.items(), MAX_NODES_PER_TASK)
    task.attempts = {
        bounded_id(k, "node id", "node_id", trims): _count(v, "attempts") for k, v in kept
    }
    trims.nodes_dropped += len(attempts) - len(task.attempts)
    for item in opened:
        fields = _list(item, "an open attempt", 5)
        node = _node(fields, "open", trims)
        if node.id not in task.attempts:
            trims.nodes_dropped += 1
            continue
        task.open[node.id] = (node, _count(fields[3], "attempt"), check_time(fields[4], "start"))
    kept_attempts: list[NodeAttempt] = []
    for item in islice(finished, MAX_ATTEMPTS_PER_TASK):
        fields = _list(item, "a finished attempt", 8)
        outcome = _text(fields[6], "outcome")
        if outcome not in _OUTCOMES:
            raise BadSnapshot(f"unknown attempt outcome {outcome[:40]!r}")
        kept_attempts.append(
            NodeAttempt(
                _node(fields, "finished", trims),
                _count(fields[3], "attempt"),
                check_time(fields[4], "start"),
                check_time(fields[5], "end"),
                outcome,
                _optional(fields[7], "message", "message", trims),
            )
        )
    task.finished = tuple(kept_attempts)
    trims.attempts_dropped += len(finished) - len(task.finished)
    return task


def _flag(value: object) -> bool:
    if type(value) is not bool:
        raise BadSnapshot("task incomplete is not true or false")
    return value


def last_seen_of(raw: object) -> float:
    """When a raw task was last updated (to choose which to keep); raise BadSnapshot."""
    if type(raw) is not dict or "last_seen" not in raw:
        raise BadSnapshot("a task is not an object with last_seen")
    return check_time(raw["last_seen"], "task last_seen")


def parse_snapshot(
    data: object,
    max_tasks: int,
    dropped: int = 0,
    *,
    built: list[TaskState] | None = None,
    trims: Trims | None = None,
) -> RestoredTracker:
    """Check and build a tracker snapshot; raise BadSnapshot when any field is wrong. `built`
    tasks (and `dropped` left out) were already read by `exporter.core.statelayout`, which
    counted its cuts in `trims`."""
    trims = trims if trims is not None else Trims()
    if type(data) is not dict:
        raise BadSnapshot("the tracker state is not an object")
    if data.get("version") != SNAPSHOT_VERSION:
        raise BadSnapshot(f"unsupported tracker snapshot version {data.get('version')!r:.40}")
    try:
        raw_tasks = _list(data["tasks"], "tasks")
        raw_finished = _list(data["finished_ids"], "finished_ids")
        latest = _number(data["latest_timestamp"], "latest_timestamp")
    except KeyError as exc:
        raise BadSnapshot(f"the tracker state has no {exc}") from None
    if latest != 0.0:  # 0: nothing was seen yet
        latest = check_time(latest, "latest_timestamp")
    excess = max(0, len(raw_tasks) - max_tasks)
    if excess:
        # Keep the most recently updated, in their saved order (least recently updated first),
        # and build only those: the cap bounds the memory and time of a restore too.
        seen = [last_seen_of(raw) for raw in raw_tasks]
        kept = heapq.nlargest(max_tasks, range(len(raw_tasks)), key=seen.__getitem__)
        kept.sort(key=lambda i: (seen[i], i))
        raw_tasks = [raw_tasks[i] for i in kept]
    tasks: OrderedDict[str, TaskState] = OrderedDict()
    for task in built if built is not None else (parse_task(raw, trims) for raw in raw_tasks):
        tasks.pop(task.task_id, None)  # a repeated id: the later entry wins
        tasks[task.task_id] = task
    finished_ids = OrderedDict.fromkeys(
        bounded_id(i, "a finished id", "task_id", trims) for i in raw_finished[-RECENTLY_FINISHED:]
    )
    return RestoredTracker(tasks, finished_ids, latest, dropped + excess, trims)
