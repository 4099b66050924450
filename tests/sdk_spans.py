"""The reference the OTLP wire encoder is checked against: spans built with the OpenTelemetry
SDK and encoded by its OTLP encoder, as the span process did before it encoded by hand.

`sdk_request` takes the same compact tasks and resource as `exporter.traces.otlp_wire` and returns
the SDK's `ExportTraceServiceRequest` for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from exporter import __version__
from exporter.core.ids import node_span_id, task_span_id, trace_id
from exporter.core.tasks import UNNAMED, FinishedTask, NodeAttempt
from exporter.core.updates import Node
from exporter.traces.spans import CompactTask

__all__ = ["sdk_request", "task_spans"]

_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_SCOPE: Final = InstrumentationScope("requence-exporter", __version__)
_OK: Final = Status(StatusCode.UNSET)
_INTERNAL: Final = SpanKind.INTERNAL


def expand(item: CompactTask) -> FinishedTask:
    """The finished task `exporter.traces.spans.compact` flattened."""
    attempts = tuple(
        NodeAttempt(Node(a[0], a[1], a[2]), a[3], a[4], a[5], a[6], a[7]) for a in item[8]
    )
    return FinishedTask(*item[:8], attempts)


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000) * 1000


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


def sdk_request(
    tasks: Sequence[CompactTask], resource: dict[str, str]
) -> ExportTraceServiceRequest:
    """What the SDK's OTLP encoder sends for these tasks, decoded from its bytes."""
    sdk_resource = Resource(resource)
    spans = [span for item in tasks for span in task_spans(expand(item), sdk_resource)]
    data = encode_spans(spans).SerializeToString()
    return ExportTraceServiceRequest.FromString(data)
