"""`/failures`: the recent failures as JSON, newest first, filtered by the query string."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from exporter.serving.failures import FAILURE_KINDS, FailureRing

__all__ = ["failures_response"]


def _error(message: str) -> tuple[int, bytes]:
    return 400, orjson.dumps({"error": message})


def failures_response(ring: FailureRing, query: Mapping[str, str]) -> tuple[int, bytes]:
    """The status code and JSON body for a `/failures` request with `query`.

    `task_name` keeps one task name (`unnamed` matches failures without one), `kind` one of
    taskError, taskAborted, nodeError, and `limit` caps the count.
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
        if not (limit_text.isascii() and limit_text.isdigit()) or int(limit_text) < 1:
            return _error("limit must be a positive whole number")
        limit = int(limit_text)
    task_name = query.get("task_name")
    failures = ring.recent(task_name=task_name, kind=kind, limit=limit)
    return 200, orjson.dumps({"failures": [f.as_dict() for f in failures]})
