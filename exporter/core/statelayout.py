"""The state file's layout: one JSON document, with one task per line, read a task at a time.

The file stays valid JSON (`jq` and `orjson.loads` read it whole), but the exporter writes the
tasks array one task per line between a first line (everything else, ending `"tasks":[`) and a
last line (`]}}`). Reading then needs memory for the tasks kept, not for the whole file: a file
holding far more tasks than `--max-tracked-tasks` is read in one pass, each task checked and
built as it is read, keeping the most recently updated.

JSON in memory can take many times its size on disk (`[[],[],...]` takes 21 times), so no line
is parsed before its cost is bounded (`parse_cost`). A file in any other layout (hand-written,
or from version 0.1.0) is read whole: only up to `FOREIGN_LIMIT` bytes and `FOREIGN_BUDGET` of
estimated memory, and only after the caller has set it aside, so a parse that runs out of
memory cannot be repeated at the next start.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from exporter.core.snapshot import BadSnapshot, Trims, check_time, parse_task
from exporter.core.tasks import TaskState

__all__ = [
    "FOREIGN_BUDGET",
    "FOREIGN_LIMIT",
    "LINE_LIMIT",
    "encode_state",
    "parse_cost",
    "read_state",
]

_HEAD_LIMIT: Final = 4 * 1024 * 1024  # the first line: since, position, recent and finished ids
# One task's line: a task at its bounds (256 nodes, 512 attempts with 2 KiB messages, every
# character escaped) stays under it.
LINE_LIMIT: Final = 16 * 1024 * 1024
FOREIGN_LIMIT: Final = 64 * 1024 * 1024
FOREIGN_BUDGET: Final = 256 * 1024 * 1024  # estimated memory of a whole-file parse
_LINE_BUDGET: Final = 64 * 1024 * 1024  # estimated memory of one line's parse
# What one JSON value can take in memory at most: the object (a one-character non-ASCII
# string, 74 bytes, is the largest small value) and its slot in its list or dict.
_VALUE_COST: Final = 96
_OPEN: Final = b'"tasks":[\n'


def parse_cost(data: bytes) -> int:
    """An upper bound of the memory `orjson.loads(data)` takes: every value at its largest
    (values are counted by the commas and brackets that introduce them, strings included, so
    it errs high), and every text byte as 4 bytes unless the data is ASCII."""
    values = data.count(b",") + data.count(b"[") + data.count(b"{") + 1
    return len(data) * (1 if data.isascii() else 4) + values * _VALUE_COST


def _loads(data: bytes, budget: int, what: str) -> Any:
    cost = parse_cost(data)
    if cost > budget:
        raise BadSnapshot(f"{what} would take over {cost >> 20} MiB to read")
    return orjson.loads(data)


def encode_state(document: dict[str, Any]) -> bytes:
    """`document` (its tracker holding `tasks`: JSON-ready dicts, or `TaskRow`s already
    encoded) in the line layout."""
    tracker = {k: v for k, v in document["tracker"].items() if k != "tasks"}
    tracker["tasks"] = []  # last, so that the first line ends where the tasks begin
    head = {k: v for k, v in document.items() if k != "tracker"}
    head["tracker"] = tracker
    body = orjson.dumps(head)
    rows = document["tracker"]["tasks"]
    if rows and type(rows[0]) is not bytes:
        rows = [orjson.dumps(task) for task in rows]
    tasks = b",\n".join(rows)  # one call: a writing thread holds the interpreter briefly
    return body[: -len(b"]}}")] + b"\n" + tasks + b"\n]}}\n"


def _read_line(handle: BinaryIO, limit: int, what: str) -> bytes:
    line = handle.readline(limit + 1)
    if len(line) > limit:
        raise BadSnapshot(f"{what} is over {limit >> 20} MiB")
    return line


def read_state(
    path: Path, keep: int, trims: Trims, set_aside: Callable[[], None]
) -> tuple[object, list[TaskState] | None, int]:
    """The decoded state file; with the line layout its tracker's tasks apart: at most `keep`,
    the most recently updated, checked and built, in file order, and how many were left out.
    `set_aside` is called before a file in another layout is parsed whole. Raise OSError,
    orjson.JSONDecodeError or BadSnapshot."""
    with path.open("rb") as handle:
        head = handle.readline(_HEAD_LIMIT)
        if not head.endswith(_OPEN):
            return _read_foreign(handle, head, set_aside), None, 0
        newest: list[tuple[float, int, TaskState]] = []  # a heap of the `keep` most recent
        count = 0
        tail = b""
        while line := _read_line(handle, LINE_LIMIT, "a task's line"):
            if line[:1] == b"]":
                tail = line
                break
            item = line.rstrip(b"\r\n")
            if item[-1:] == b",":
                item = item[:-1]
            if not item:
                continue
            raw = _loads(item, _LINE_BUDGET, "a task's line")
            if type(raw) is not dict or "last_seen" not in raw:
                raise BadSnapshot("a task is not an object with last_seen")
            seen = check_time(raw["last_seen"], "task last_seen")
            count += 1
            if len(newest) >= keep and (seen, count) <= newest[0][:2]:
                continue  # older than every task kept: not built at all
            entry = (seen, count, parse_task(raw, trims))
            if len(newest) < keep:
                heapq.heappush(newest, entry)
            else:
                heapq.heapreplace(newest, entry)
    if not tail:
        raise BadSnapshot("truncated: the tasks never end")
    document = _loads(head + tail, _LINE_BUDGET, "the first line")
    tracker = document.get("tracker") if type(document) is dict else None
    if type(tracker) is not dict:
        raise BadSnapshot("the tracker state is not an object")
    kept = [task for _, _, task in sorted(newest, key=lambda e: (e[0], e[1]))]
    return document, kept, count - len(newest)


def _read_foreign(handle: BinaryIO, head: bytes, set_aside: Callable[[], None]) -> object:
    size = os.fstat(handle.fileno()).st_size
    set_aside()  # before parsing: were it to exhaust memory, the next start begins afresh
    if size > FOREIGN_LIMIT:
        raise BadSnapshot(
            f"over {FOREIGN_LIMIT >> 20} MiB and not in the layout the exporter writes"
        )
    data = head + handle.read(FOREIGN_LIMIT + 1 - len(head))
    if len(data) > FOREIGN_LIMIT:
        raise BadSnapshot(f"over {FOREIGN_LIMIT >> 20} MiB")
    return _loads(data, FOREIGN_BUDGET, "a file in another layout")
