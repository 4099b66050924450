"""`/failures`: the recent failures as JSON, newest first, filtered by the query string."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from exporter.serving.failures import FAILURE_KINDS, MAX_NAME_BYTES, FailureRing

__all__ = ["failures_response"]

_LIMIT_DIGITS = 9


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
        # Digits are counted before int() sees them: it refuses 4,301 or more with an error.
        digits = limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= _LIMIT_DIGITS
        if not digits or int(limit_text) < 1:
            return _error(f"limit must be a whole number from 1 to {10**_LIMIT_DIGITS - 1}")
        limit = min(int(limit_text), ring.max_count)
    task_name = query.get("task_name")
    if task_name is not None and len(task_name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        return _error(f"task_name is longer than any kept ({MAX_NAME_BYTES} bytes)")
    failures = ring.recent(task_name=task_name, kind=kind, limit=limit)
    return 200, orjson.dumps({"failures": [f.as_dict() for f in failures]})
