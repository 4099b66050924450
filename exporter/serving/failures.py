"""The most recent failures (taskError, taskAborted, nodeError), fed by the tracker.

`FailureRecorder` is the tracker's failure hook: the tracker calls it for failures only (a
nodeError with the attempt it closed, a task that errored or was aborted), not for every update
as it calls its observers. It reads the task state it is handed and keeps nothing else. Each
failure becomes a `Failure` in a `FailureRing`, bounded in count and in bytes, and is handed to
any listeners (the failure log). Text from the stream is untrusted: reasons are cut to 1 KiB and
names to 256 bytes, with control characters removed, before they are kept. `failures_response`
serves the ring as JSON at `/failures`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from exporter.core.ids import node_span_id, task_span_id, trace_id_hex
from exporter.core.tasks import UNNAMED, FinishedTask, NodeAttempt, TaskState
from exporter.core.units import parse_whole
from exporter.core.updates import LAST_TIMESTAMP, NODE_ERROR, TASK_ABORTED, TASK_ERROR, Update

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RECENT_FAILURES",
    "FAILURE_KINDS",
    "MAX_NAME_BYTES",
    "MAX_REASON_BYTES",
    "Failure",
    "FailureRecorder",
    "FailureRing",
    "clean_text",
    "failures_response",
]

FAILURE_KINDS: Final = (TASK_ERROR, TASK_ABORTED, NODE_ERROR)
DEFAULT_RECENT_FAILURES: Final = 200
# The ring's byte budget (text plus a fixed cost per failure); with the default count of 200
# and the field limits below it is never reached, but it bounds a large --recent-failures.
DEFAULT_MAX_BYTES: Final = 1024 * 1024
MAX_REASON_BYTES: Final = 1024
MAX_NAME_BYTES: Final = 256
# What one failure costs beyond its text: the object, its slots and the ids (measured by
# `bench/memory.py`, rounded up).
FAILURE_OVERHEAD_BYTES: Final = 400
# C0 and C1 controls and DEL; line breaks and tabs become spaces so a reason stays one line.
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS: Final = re.compile("[\t\n\r\u2028\u2029]+")
_TASK_OUTCOME_KIND: Final = {"errored": TASK_ERROR, "aborted": TASK_ABORTED}
_MAX_LIMIT: Final = 999_999_999


def clean_text(text: str | None, limit: int) -> str | None:
    """`text` without control characters, cut to at most `limit` UTF-8 bytes."""
    if text is None:
        return None
    text = _CONTROL.sub("", _BREAKS.sub(" ", text))
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    # Cut on a character boundary: a partial last character is dropped, not mangled.
    return data[:limit].decode("utf-8", "ignore")


def iso_time(seconds: float) -> str:
    """Server time as ISO 8601 UTC with milliseconds (`2026-11-22T10:00:01.250Z`)."""
    # The decoder lets no other time through; rendering a failure must never raise.
    if not 0.0 <= seconds <= LAST_TIMESTAMP:
        seconds = 0.0 if not seconds > 0.0 else LAST_TIMESTAMP
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Failure:
    """One failure, its text already cleaned and cut."""

    __slots__ = (
        "duration",
        "kind",
        "node",
        "node_id",
        "node_type",
        "reason",
        "root_task_id",
        "size",
        "span_id",
        "task_id",
        "task_name",
        "time",
        "trace_id",
    )

    def __init__(
        self,
        *,
        time: float,
        kind: str,
        task_id: str,
        task_name: str | None,
        root_task_id: str | None,
        node: str | None,
        node_id: str | None,
        node_type: str | None,
        reason: str | None,
        duration: float | None,
        trace_id: str,
        span_id: str,
    ) -> None:
        self.time = time
        self.kind = kind
        self.task_id = task_id
        self.task_name = task_name
        self.root_task_id = root_task_id
        self.node = node
        self.node_id = node_id
        self.node_type = node_type
        self.reason = reason
        self.duration = duration
        self.trace_id = trace_id
        self.span_id = span_id
        self.size = FAILURE_OVERHEAD_BYTES + sum(
            len(text)
            for text in (task_id, task_name, root_task_id, node, node_id, node_type, reason)
            if text is not None
        )

    def as_dict(self) -> dict[str, Any]:
        """The failure as `/failures` shows it (absent values are None)."""
        duration = self.duration
        return {
            "time": iso_time(self.time),
            "kind": self.kind,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "root_task_id": self.root_task_id,
            "node": self.node,
            "node_type": self.node_type,
            "reason": self.reason,
            "duration_seconds": None if duration is None else round(duration, 6),
            "trace_id": self.trace_id,
        }


class FailureRing:
    """The newest failures, at most `max_count` of them and `max_bytes` of text."""

    def __init__(
        self, max_count: int = DEFAULT_RECENT_FAILURES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if max_count < 1 or max_bytes < 1:
            raise ValueError("the failure ring needs room for at least one failure")
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.bytes = 0
        self.total = 0  # failures ever added, kept or not
        self._items: deque[Failure] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, failure: Failure) -> None:
        """Keep `failure`, forgetting the oldest ones past either bound."""
        items = self._items
        items.append(failure)
        self.bytes += failure.size
        self.total += 1
        # The newest failure always stays, even alone above the byte budget.
        while len(items) > 1 and (len(items) > self.max_count or self.bytes > self.max_bytes):
            self.bytes -= items.popleft().size

    def newest(self) -> Failure | None:
        """The last failure added, if any is kept."""
        return self._items[-1] if self._items else None

    def recent(
        self, *, task_name: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[Failure]:
        """Kept failures, newest first, optionally only one task name and/or kind.

        A task name of `unnamed` also matches failures of tasks without a name, as in metrics.
        """
        out: list[Failure] = []
        if limit is not None and limit < 1:
            return out
        for failure in reversed(self._items):
            if task_name is not None and (failure.task_name or UNNAMED) != task_name:
                continue
            if kind is not None and failure.kind != kind:
                continue
            out.append(failure)
            if limit is not None and len(out) >= limit:
                break
        return out

    def __iter__(self) -> Iterator[Failure]:
        """Oldest first."""
        return iter(self._items)


class FailureRecorder:
    """The tracker's failure hook: turns failures into `Failure`s for the ring and listeners."""

    def __init__(
        self, ring: FailureRing, listeners: Sequence[Callable[[Failure], None]] = ()
    ) -> None:
        self.ring = ring
        self._listeners = tuple(listeners)

    def add_listener(self, listener: Callable[[Failure], None]) -> None:
        """Hand every later failure to `listener` too."""
        self._listeners = (*self._listeners, listener)

    def on_node_error(self, update: Update, task: TaskState, attempt: NodeAttempt | None) -> None:
        """A nodeError, with the attempt it closed (its duration) when its start was seen."""
        node = update.node
        if node is None:
            return
        # The attempt that failed is the node's latest start in this task; without a seen
        # start there is no node span, and the failure belongs to the task's span.
        number = task.attempts.get(node.id)
        if number is None:
            span = task_span_id(task.task_id)
        else:
            span = node_span_id(task.task_id, node.id, number)
        self._record(
            Failure(
                time=update.timestamp,
                kind=NODE_ERROR,
                task_id=task.task_id,
                task_name=clean_text(task.name, MAX_NAME_BYTES),
                root_task_id=task.root_id,
                node=clean_text(node.label, MAX_NAME_BYTES),
                node_id=node.id,
                node_type=clean_text(node.type, MAX_NAME_BYTES),
                reason=clean_text(update.message, MAX_REASON_BYTES),
                duration=None if attempt is None else attempt.end - attempt.start,
                trace_id=trace_id_hex(task.task_id, task.root_id),
                span_id=format(span, "016x"),
            )
        )

    def on_task_failed(self, task: FinishedTask) -> None:
        """A taskError or taskAborted, with its duration when its start was seen."""
        kind = _TASK_OUTCOME_KIND.get(task.outcome)
        if kind is None:
            return
        task_id = task.task_id
        self._record(
            Failure(
                time=task.end,
                kind=kind,
                task_id=task_id,
                task_name=clean_text(task.name, MAX_NAME_BYTES),
                root_task_id=task.root_id,
                node=None,
                node_id=None,
                node_type=None,
                reason=clean_text(task.message, MAX_REASON_BYTES),
                duration=None if task.incomplete else task.end - task.start,
                trace_id=trace_id_hex(task_id, task.root_id),
                span_id=format(task_span_id(task_id), "016x"),
            )
        )

    def _record(self, failure: Failure) -> None:
        self.ring.add(failure)
        for listener in self._listeners:
            listener(failure)


def _error(message: str) -> tuple[int, bytes]:
    return 400, orjson.dumps({"error": message})


def failures_response(ring: FailureRing, query: Mapping[str, str]) -> tuple[int, bytes]:
    """The status code and JSON body for a `/failures` request with `query`.

    `task_name` keeps one task name (`unnamed` matches failures without one), `kind` one of
    taskError, taskAborted, nodeError, and `limit` caps the count. Each is checked for its
    domain; anything else is a 400 with a reason.
    """
    unknown = sorted(set(query) - {"task_name", "kind", "limit"})
    if unknown:
        return _error(f"unknown query parameter {unknown[0]!r}: use task_name, kind, limit")
    kind = query.get("kind") or None
    if kind is not None and kind not in FAILURE_KINDS:
        return _error(f"kind must be one of {', '.join(FAILURE_KINDS)}")
    limit_text = query.get("limit")
    limit = None
    if limit_text:
        try:
            limit = min(parse_whole(limit_text, 1, _MAX_LIMIT), ring.max_count)
        except ValueError as exc:
            return _error(f"limit: {exc}")
    task_name = query.get("task_name")
    if task_name is not None and len(task_name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        return _error(f"task_name is longer than any kept ({MAX_NAME_BYTES} bytes)")
    failures = ring.recent(task_name=task_name, kind=kind, limit=limit)
    return 200, orjson.dumps({"failures": [f.as_dict() for f in failures]})
