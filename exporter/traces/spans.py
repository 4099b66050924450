"""Finished tasks in the compact form they cross to the span process in.

`compact` flattens the tracker's `FinishedTask` into exact tuples of strings, numbers, bools
and None, which marshal at C speed; the span process encodes them straight to OTLP spans
(`exporter.traces.otlp_wire`): one task span and one span per node attempt.
"""

from __future__ import annotations

from exporter.core.tasks import FinishedTask

__all__ = ["CompactAttempt", "CompactTask", "compact", "span_count"]

# A node attempt with its node flattened: (node_id, node_type, node_alias, attempt, start, end,
# outcome, message).
CompactAttempt = tuple[str, str, str | None, int, float, float, str, str | None]
# (task_id, name, root_id, start, end, outcome, message, incomplete, attempts): a FinishedTask
# as exact tuples (marshal takes no tuple subclasses).
CompactTask = tuple[
    str, str | None, str | None, float, float, str, str | None, bool, tuple[CompactAttempt, ...]
]


def compact(task: FinishedTask) -> CompactTask:
    """A finished task as plain tuples of strings, floats, ints, bools and None."""
    # Slicing a tuple subclass yields an exact tuple, without a Python-level call.
    return (*task[:8], tuple([a[0][:] + a[1:] for a in task[8]]))


def span_count(item: CompactTask) -> int:
    """Spans a compact task becomes: its own and one per attempt."""
    return 1 + len(item[8])
