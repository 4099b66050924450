"""The tracker's part of the state file, read back strictly.

A state file is input like any other: every field is checked for its type before the tracker
sees it, so a file with a wrong type is refused as a whole (and set aside by the caller) rather
than crashing at the first update that touches it. Restoring keeps at most `max_tasks` tasks, the
most recently updated, and counts the rest as evicted, so an old file cannot outgrow the cap.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from typing import Any, Final, NamedTuple

from exporter.core.tasks import NodeAttempt, TaskState
from exporter.core.tracker import RECENTLY_FINISHED, SNAPSHOT_VERSION
from exporter.core.updates import Node

__all__ = ["SNAPSHOT_VERSION", "BadSnapshot", "RestoredTracker", "last_seen_of", "parse_snapshot"]

_OUTCOMES: Final = frozenset({"ended", "errored", "deferred", "interrupted"})


class BadSnapshot(ValueError):
    """The tracker part of a state file is not one this exporter wrote."""


class RestoredTracker(NamedTuple):
    """What `parse_snapshot` read: the tasks kept (least recently updated first) and the rest."""

    tasks: OrderedDict[str, TaskState]
    finished_ids: OrderedDict[str, None]
    latest_timestamp: float
    dropped: int  # tasks beyond the cap, left out


def _text(value: object, what: str) -> str:
    if type(value) is not str:
        raise BadSnapshot(f"{what} is {type(value).__name__}, not a string")
    return value


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _number(value: object, what: str) -> float:
    if type(value) is not float and type(value) is not int:
        raise BadSnapshot(f"{what} is {type(value).__name__}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise BadSnapshot(f"{what} is not finite")
    return number


def _count(value: object, what: str) -> int:
    if type(value) is not int or not 0 < value < 2**31:
        raise BadSnapshot(f"{what} is not an attempt number")
    return value


def _list(value: object, what: str, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        shape = "a list" if length is None else f"a list of {length}"
        raise BadSnapshot(f"{what} is not {shape}")
    return value


def _node(raw: list[Any], what: str) -> Node:
    return Node(
        _text(raw[0], f"{what} node id"),
        _text(raw[1], f"{what} node type"),
        _optional_text(raw[2], f"{what} node alias"),
    )


def _task(raw: object) -> TaskState:
    if type(raw) is not dict:
        raise BadSnapshot("a task is not an object")
    try:
        task = TaskState(
            _text(raw["id"], "task id"),
            _optional_text(raw["name"], "task name"),
            _optional_text(raw["root"], "task root"),
            _number(raw["start"], "task start"),
            _flag(raw["incomplete"]),
        )
        task.last_seen = _number(raw["last_seen"], "task last_seen")
        attempts = raw["attempts"]
        opened, finished = _list(raw["open"], "open"), _list(raw["finished"], "finished")
    except KeyError as exc:
        raise BadSnapshot(f"a task has no {exc}") from None
    if type(attempts) is not dict:
        raise BadSnapshot("task attempts is not an object")
    task.attempts = {_text(k, "node id"): _count(v, "attempts") for k, v in attempts.items()}
    for item in opened:
        fields = _list(item, "an open attempt", 5)
        node = _node(fields, "open")
        task.open[node.id] = (node, _count(fields[3], "attempt"), _number(fields[4], "start"))
    for item in finished:
        fields = _list(item, "a finished attempt", 8)
        outcome = _text(fields[6], "outcome")
        if outcome not in _OUTCOMES:
            raise BadSnapshot(f"unknown attempt outcome {outcome[:40]!r}")
        task.finished.append(
            NodeAttempt(
                _node(fields, "finished"),
                _count(fields[3], "attempt"),
                _number(fields[4], "start"),
                _number(fields[5], "end"),
                outcome,
                _optional_text(fields[7], "message"),
            )
        )
    return task


def _flag(value: object) -> bool:
    if type(value) is not bool:
        raise BadSnapshot("task incomplete is not true or false")
    return value


def last_seen_of(raw: object) -> float:
    """When a raw task was last updated (to choose which to keep); raise BadSnapshot."""
    if type(raw) is not dict or "last_seen" not in raw:
        raise BadSnapshot("a task is not an object with last_seen")
    return _number(raw["last_seen"], "task last_seen")


def parse_snapshot(data: object, max_tasks: int, dropped: int = 0) -> RestoredTracker:
    """Check and build a tracker snapshot; raise BadSnapshot when any field is wrong. `dropped`
    tasks were already left out while reading (`exporter.core.statelayout`)."""
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
    excess = max(0, len(raw_tasks) - max_tasks)
    if excess:
        # Keep the most recently updated, in their saved order (least recently updated first),
        # and build only those: the cap bounds the memory and time of a restore too.
        seen = [last_seen_of(raw) for raw in raw_tasks]
        kept = heapq.nlargest(max_tasks, range(len(raw_tasks)), key=seen.__getitem__)
        kept.sort(key=lambda i: (seen[i], i))
        raw_tasks = [raw_tasks[i] for i in kept]
    tasks: OrderedDict[str, TaskState] = OrderedDict()
    for raw in raw_tasks:
        task = _task(raw)
        tasks.pop(task.task_id, None)  # a repeated id: the later entry wins
        tasks[task.task_id] = task
    finished_ids = OrderedDict.fromkeys(
        _text(i, "a finished id") for i in raw_finished[-RECENTLY_FINISHED:]
    )
    return RestoredTracker(tasks, finished_ids, latest, dropped + excess)
