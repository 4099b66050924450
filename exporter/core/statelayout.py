"""The state file's layout: one JSON document, with one task per line, read a task at a time.

The file stays valid JSON (`jq` and `orjson.loads` read it whole), but the exporter writes the
tasks array one task per line between a first line (everything else, ending `"tasks":[`) and a
last line (`]}}`). Reading then needs memory for the tasks kept, not for the whole file: a file
holding far more tasks than `--max-tracked-tasks` is read in one pass, keeping the most recently
updated. A file in any other layout (hand-written, or from an older version) is read whole, up
to `FOREIGN_LIMIT` bytes; a larger one is refused.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import Any, Final

import orjson

from exporter.core.snapshot import BadSnapshot, last_seen_of

__all__ = ["FOREIGN_LIMIT", "encode_state", "read_state"]

_HEAD_LIMIT: Final = 16 * 1024 * 1024  # the first line: since, position, recent and finished ids
FOREIGN_LIMIT: Final = 64 * 1024 * 1024
_OPEN: Final = b'"tasks":[\n'


def encode_state(document: dict[str, Any]) -> bytes:
    """`document` (its tracker holding `tasks`) in the line layout."""
    tracker = {k: v for k, v in document["tracker"].items() if k != "tasks"}
    tracker["tasks"] = []  # last, so that the first line ends where the tasks begin
    head = {k: v for k, v in document.items() if k != "tracker"}
    head["tracker"] = tracker
    body = orjson.dumps(head)
    tasks = b",\n".join(orjson.dumps(task) for task in document["tracker"]["tasks"])
    return body[: -len(b"]}}")] + b"\n" + tasks + b"\n]}}\n"


def read_state(path: Path, keep: int) -> tuple[object, int]:
    """The decoded state file with at most `keep` tasks, the most recently updated in file
    order, and how many were left out. Raise OSError, orjson.JSONDecodeError or BadSnapshot."""
    with path.open("rb") as handle:
        head = handle.readline(_HEAD_LIMIT)
        if not head.endswith(_OPEN):
            if os.fstat(handle.fileno()).st_size > FOREIGN_LIMIT:
                raise BadSnapshot(
                    f"over {FOREIGN_LIMIT >> 20} MiB and not in the layout the exporter writes"
                )
            return orjson.loads(head + handle.read(FOREIGN_LIMIT)), 0
        newest: list[tuple[float, int, object]] = []  # a heap of the `keep` most recent
        count = 0
        tail = b""
        for line in handle:
            if line[:1] == b"]":
                tail = line
                break
            item = line.rstrip(b"\r\n")
            if item[-1:] == b",":
                item = item[:-1]
            if not item:
                continue
            task = orjson.loads(item)
            entry = (last_seen_of(task), count, task)
            count += 1
            if len(newest) < keep:
                heapq.heappush(newest, entry)
            else:
                heapq.heappushpop(newest, entry)
    if not tail:
        raise BadSnapshot("truncated: the tasks never end")
    document = orjson.loads(head + tail)
    tracker = document.get("tracker") if type(document) is dict else None
    if type(tracker) is not dict:
        raise BadSnapshot("the tracker state is not an object")
    tracker["tasks"] = [task for _, _, task in sorted(newest, key=lambda e: (e[0], e[1]))]
    return document, count - len(newest)
