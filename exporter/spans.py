"""The span model: a finished task as one task span and a span per node attempt.

Spans are built after the fact from the tracker's `FinishedTask`, with the recorded server
timestamps and deterministic ids (`exporter.ids`), as `ReadableSpan` values an OTLP
`SpanExporter` takes without a tracer. `compact` and `expand` carry a finished task between
processes as plain tuples, which marshal and pickle at C speed.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from exporter import __version__
from exporter.decode import Node
from exporter.ids import node_span_id, task_span_id, trace_id
from exporter.otlp_config import TracingSettings
from exporter.tracker import UNNAMED, FinishedTask, NodeAttempt

__all__ = [
    "CompactAttempt",
    "CompactTask",
    "build_resource",
    "compact",
    "expand",
    "span_count",
    "task_spans",
]

_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_SCOPE: Final = InstrumentationScope("requence-exporter", __version__)
_OK: Final = Status(StatusCode.UNSET)
_INTERNAL: Final = SpanKind.INTERNAL

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


def expand(item: CompactTask) -> FinishedTask:
    """The finished task `compact` flattened."""
    attempts = tuple(
        NodeAttempt(Node(a[0], a[1], a[2]), a[3], a[4], a[5], a[6], a[7]) for a in item[8]
    )
    return FinishedTask(*item[:8], attempts)


def span_count(item: CompactTask) -> int:
    """Spans a compact task becomes: its own and one per attempt."""
    return 1 + len(item[8])


def _ns(seconds: float) -> int:
    # Server timestamps carry at most microseconds; rounding there first keeps float noise
    # out of the nanoseconds.
    return round(seconds * 1_000_000) * 1000


class _FixedResource(Resource):
    """A resource whose hash is computed once: the OTLP encoder hashes it for every span."""

    def __init__(self, attributes: dict[str, str]) -> None:
        super().__init__(attributes)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def build_resource(settings: TracingSettings) -> Resource:
    """The resource every span carries: `service.name` (default `requence`) and the extras."""
    attributes: dict[str, str] = dict(settings.resource_attributes)
    attributes["service.name"] = settings.service_name
    return _FixedResource(attributes)


def _node_span(
    task_id: str, trace: int, parent: SpanContext, a: NodeAttempt, resource: Resource
) -> ReadableSpan:
    node = a.node
    end = _ns(a.end)
    attributes: dict[str, str | int] = {
        "requence.node.id": node.id,
        "requence.node.type": node.type,
        "requence.node.outcome": a.outcome,
        "requence.node.attempt": a.attempt,
    }
    if node.alias:
        attributes["requence.node.alias"] = node.alias
    status = _OK
    events: tuple[Event, ...] = ()
    if a.outcome == "errored":
        status = Status(StatusCode.ERROR, a.message)
        message = {"exception.message": a.message} if a.message is not None else None
        events = (Event("exception", message, end),)
    elif a.outcome == "deferred":
        reason = {"requence.node.defer_reason": a.message} if a.message is not None else None
        events = (Event("requence.node.deferred", reason, end),)
    return ReadableSpan(
        name=f"requence.node {node.alias or node.id}",
        context=SpanContext(trace, node_span_id(task_id, node.id, a.attempt), False, _SAMPLED),
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=events,
        kind=_INTERNAL,
        status=status,
        start_time=_ns(a.start),
        end_time=end,
        instrumentation_scope=_SCOPE,
    )


def task_spans(task: FinishedTask, resource: Resource) -> list[ReadableSpan]:
    """The task's span followed by one span per node attempt."""
    task_id = task.task_id
    root_id = task.root_id
    trace = trace_id(task_id, root_id)
    context = SpanContext(trace, task_span_id(task_id), False, _SAMPLED)
    parent = None
    if root_id and root_id != task_id:
        # A sub-task hangs under its root task's span, in the root's trace.
        parent = SpanContext(trace, task_span_id(root_id), False, _SAMPLED)
    name = task.name or UNNAMED
    attributes: dict[str, str | bool] = {
        "requence.task.id": task_id,
        "requence.task.name": name,
        "requence.task.outcome": task.outcome,
    }
    if root_id:
        attributes["requence.task.root_id"] = root_id
    if task.incomplete:
        attributes["requence.task.incomplete"] = True
    if task.outcome == "evicted":
        attributes["requence.task.evicted"] = True
    elif task.outcome == "aborted" and task.message is not None:
        attributes["requence.task.abort_reason"] = task.message
    status = Status(StatusCode.ERROR, task.message) if task.outcome == "errored" else _OK
    spans = [
        ReadableSpan(
            name=f"requence.task {name}",
            context=context,
            parent=parent,
            resource=resource,
            attributes=attributes,
            kind=_INTERNAL,
            status=status,
            start_time=_ns(task.start),
            end_time=_ns(task.end),
            instrumentation_scope=_SCOPE,
        )
    ]
    spans.extend(_node_span(task_id, trace, context, a, resource) for a in task.attempts)
    return spans
