"""Deterministic trace and span ids, so every replica and every restart names a task alike.

Trace id: the 128 bits of the root task's UUID (a top task is its own root); an id that is not a
UUID is hashed to 128 bits. Span ids: 64 bits hashed from the task id, and from (task id, node id,
attempt) for a node attempt. Ids are never zero (zero means "invalid" in OpenTelemetry).
"""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Final

__all__ = [
    "node_span_id",
    "node_span_id_bytes",
    "task_span_id",
    "task_span_id_bytes",
    "trace_id",
    "trace_id_hex",
]

_ZERO_SPAN_ID: Final = bytes(8)
_ONE_SPAN_ID: Final = (1).to_bytes(8, "big")


def _hash(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")
    return value or 1


def _span_id(text: str) -> bytes:
    # As _hash(text, 8), big-endian: the form OTLP sends, without going through an int.
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return _ONE_SPAN_ID if digest == _ZERO_SPAN_ID else digest


@lru_cache(maxsize=65536)
def trace_id(task_id: str, root_id: str | None = None) -> int:
    """The trace id of a task: its root task's UUID as a 128-bit integer."""
    top = root_id or task_id
    try:
        value = uuid.UUID(top).int
    except ValueError:
        return _hash(f"trace:{top}", 16)
    return value or _hash(f"trace:{top}", 16)


def trace_id_hex(task_id: str, root_id: str | None = None) -> str:
    """`trace_id` as the 32 lowercase hex digits Tempo and Jaeger search for."""
    return format(trace_id(task_id, root_id), "032x")


def task_span_id(task_id: str) -> int:
    """The span id of a task's span."""
    return _hash(f"task:{task_id}", 8)


def node_span_id(task_id: str, node_id: str, attempt: int) -> int:
    """The span id of one attempt of a node in a task."""
    return _hash(f"node:{task_id}:{node_id}:{attempt}", 8)


def task_span_id_bytes(task_id: str) -> bytes:
    """`task_span_id` as the 8 big-endian bytes OTLP carries."""
    return _span_id(f"task:{task_id}")


def node_span_id_bytes(task_id: str, node_id: str, attempt: int) -> bytes:
    """`node_span_id` as the 8 big-endian bytes OTLP carries."""
    return _span_id(f"node:{task_id}:{node_id}:{attempt}")
