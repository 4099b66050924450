"""The OTLP/protobuf wire format of trace exports, written by hand for our two span shapes.

`encode_task` turns a compact finished task (`exporter.traces.spans`) straight into the bytes of its
spans (a task span and one span per node attempt), and `export_request` wraps the spans of a
batch into an `ExportTraceServiceRequest` (opentelemetry/proto/collector/trace/v1) with one
resource and one instrumentation scope. The bytes decode to exactly what the OpenTelemetry
SDK's encoder made of the same spans. Every constant part (tags, attribute keys, length
prefixes of short values) is computed once at import. The readers at the end take apart the
few small messages an OTLP back-end answers with.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

from exporter.core.ids import node_span_id_bytes, task_span_id_bytes, trace_id
from exporter.traces.spans import CompactAttempt, CompactTask

__all__ = [
    "SCOPE_NAME",
    "ResourceScope",
    "WireError",
    "encode_task",
    "export_request",
    "ns",
    "resource_scope",
]


SCOPE_NAME: Final = "requence-exporter"  # the instrumentation scope of every span


class WireError(ValueError):
    """Bytes that are not the protobuf message they were read as."""


# -- primitives ------------------------------------------------------------------------------

_BYTE: Final = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def ns(seconds: float) -> int:
    """A server timestamp in nanoseconds."""
    # Server timestamps carry at most microseconds; rounding there first keeps float noise
    # out of the nanoseconds.
    return round(seconds * 1_000_000) * 1000


# Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
_TAG1: Final = b"\x0a"  # field 1, length-delimited
_TAG2: Final = b"\x12"  # field 2, length-delimited
_SPAN_ATTRIBUTE: Final = b"\x4a"  # Span.attributes = 9
_EVENT_ATTRIBUTE: Final = b"\x1a"  # Span.Event.attributes = 3
_TRACE_ID: Final = b"\x0a\x10"  # Span.trace_id = 1, 16 bytes
_SPAN_ID: Final = b"\x12\x08"  # Span.span_id = 2, 8 bytes
_PARENT_ID: Final = b"\x22\x08"  # Span.parent_span_id = 4, 8 bytes
_EVENT: Final = b"\x5a"  # Span.events = 11
_STATUS: Final = b"\x7a"  # Span.status = 15
# Status {} (UNSET): the SDK always sets the field, so it is present even when empty.
_STATUS_UNSET: Final = b"\x7a\x00"
_STATUS_ERROR_CODE: Final = b"\x18\x02"  # Status.code = 3: STATUS_CODE_ERROR
# Span.flags = 16 (fixed32): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, a local parent or none.
_FLAGS: Final = b"\x85\x01" + (0x100).to_bytes(4, "little")
_STATUS_UNSET_FLAGS: Final = _STATUS_UNSET + _FLAGS
# Span.kind = 6 (SPAN_KIND_INTERNAL = 1), start_time_unix_nano = 7 and end_time_unix_nano = 8
# (both fixed64).
_KIND_TIMES: Final = struct.Struct("<BBBQBQ")
_EVENT_TIME: Final = struct.Struct("<BQ")  # Span.Event.time_unix_nano = 1, fixed64
_SHORT: Final = 256  # values up to this many bytes take a precomputed prefix


def _string_prefix(tag: bytes, field: bytes, size: int) -> bytes:
    """A string attribute up to its value's `size` bytes; `field` is the key's part."""
    # AnyValue.string_value = 1: a oneof member, written even when empty.
    any_value = _TAG1 + _varint(size)
    any_size = len(any_value) + size
    kv_size = len(field) + len(_varint(any_size)) + any_size
    return tag + _varint(kv_size) + field + _varint(any_size) + any_value


def _key_field(key: str) -> bytes:
    # KeyValue.key = 1, then the tag of KeyValue.value = 2.
    return _delimited(_TAG1, key.encode()) + _TAG2


class _Key:
    """A string attribute key: every prefix up to its value's bytes, per value length, and
    the whole attribute for the values it usually takes."""

    __slots__ = ("common", "field", "short", "tag")

    def __init__(self, tag: bytes, key: str, common: tuple[str, ...] = ()) -> None:
        self.tag = tag
        self.field = _key_field(key)
        self.short = [self._prefix(n) for n in range(_SHORT)]
        self.common = {v: self._prefix(len(v.encode())) + v.encode() for v in common}

    def _prefix(self, size: int) -> bytes:
        return _string_prefix(self.tag, self.field, size)

    def prefix(self, size: int) -> bytes:
        """Everything of the attribute before its value's `size` bytes."""
        return self.short[size] if size < _SHORT else self._prefix(size)

    def attribute(self, value: str) -> bytes:
        """The whole attribute with this value."""
        found = self.common.get(value)
        if found is not None:
            return found
        data = value.encode()
        return self.prefix(len(data)) + data


def _int_attribute(tag: bytes, key: str, value: int) -> bytes:
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f"{key}={value} does not fit an int64")
    # AnyValue.int_value = 3, an int64: a negative one travels as its two's complement.
    any_value = b"\x18" + _varint(value + (1 << 64) if value < 0 else value)
    return _delimited(tag, _key_field(key) + _varint(len(any_value)) + any_value)


def _true_attribute(tag: bytes, key: str) -> bytes:
    any_value = b"\x10\x01"  # AnyValue.bool_value = 2
    return _delimited(tag, _key_field(key) + _varint(len(any_value)) + any_value)


def _string_attribute(tag: bytes, key: str, value: str) -> bytes:
    data = value.encode()
    return _string_prefix(tag, _key_field(key), len(data)) + data


# -- the span shapes -------------------------------------------------------------------------

_TASK_ID: Final = _Key(_SPAN_ATTRIBUTE, "requence.task.id")
_TASK_NAME: Final = _Key(_SPAN_ATTRIBUTE, "requence.task.name")
_TASK_OUTCOME: Final = _Key(
    _SPAN_ATTRIBUTE, "requence.task.outcome", ("ended", "errored", "aborted", "evicted")
)
_TASK_ROOT_ID: Final = _Key(_SPAN_ATTRIBUTE, "requence.task.root_id")
_TASK_ABORT_REASON: Final = _Key(_SPAN_ATTRIBUTE, "requence.task.abort_reason")
_TASK_INCOMPLETE: Final = _true_attribute(_SPAN_ATTRIBUTE, "requence.task.incomplete")
_TASK_EVICTED: Final = _true_attribute(_SPAN_ATTRIBUTE, "requence.task.evicted")
_NODE_ID: Final = _Key(_SPAN_ATTRIBUTE, "requence.node.id")
_NODE_TYPE: Final = _Key(
    _SPAN_ATTRIBUTE, "requence.node.type", ("service", "logic", "or", "reference")
)
_NODE_OUTCOME: Final = _Key(
    _SPAN_ATTRIBUTE, "requence.node.outcome", ("ended", "errored", "deferred", "interrupted")
)
_NODE_ALIAS: Final = _Key(_SPAN_ATTRIBUTE, "requence.node.alias")
_ATTEMPTS: Final = [_int_attribute(_SPAN_ATTRIBUTE, "requence.node.attempt", n) for n in range(64)]
_EXCEPTION_MESSAGE: Final = _Key(_EVENT_ATTRIBUTE, "exception.message")
_DEFER_REASON: Final = _Key(_EVENT_ATTRIBUTE, "requence.node.defer_reason")
_UNNAMED: Final = b"unnamed"  # as exporter.core.tasks.UNNAMED


def _name_prefixes(prefix: str) -> list[bytes]:
    # Span.name = 5, up to the task's name or the node's alias (or id).
    head = prefix.encode()
    return [b"\x2a" + _varint(len(head) + n) + head for n in range(_SHORT)]


_TASK_NAME_PREFIX: Final = "requence.task "
_NODE_NAME_PREFIX: Final = "requence.node "
_TASK_NAMES: Final = _name_prefixes(_TASK_NAME_PREFIX)
_NODE_NAMES: Final = _name_prefixes(_NODE_NAME_PREFIX)


def _name(names: list[bytes], prefix: str, value: bytes) -> bytes:
    size = len(value)
    if size < _SHORT:
        return names[size] + value
    head = prefix.encode()
    return b"\x2a" + _varint(len(head) + size) + head + value


def _event(name: str, key: _Key, value: str | None, time: int) -> bytes:
    # Span.Event: time_unix_nano = 1, name = 2, attributes = 3.
    body = _EVENT_TIME.pack(0x09, time) + _delimited(_TAG2, name.encode())
    if value is not None:
        data = value.encode()
        body += key.prefix(len(data)) + data
    return _delimited(_EVENT, body)


def _error_status(message: str | None) -> bytes:
    # Status.message = 2 (an empty one is not written), code = 3.
    body = _delimited(_TAG2, message.encode()) if message else b""
    return _delimited(_STATUS, body + _STATUS_ERROR_CODE)


def _node_span(
    out: list[bytes], trace: bytes, parent: bytes, task_id: str, a: CompactAttempt
) -> None:
    node_id, node_type, alias, attempt, start, end, outcome, message = a
    id_data = node_id.encode()
    end_ns = ns(end)
    alias_data = alias.encode() if alias else b""
    parts = [
        trace,
        node_span_id_bytes(task_id, node_id, attempt),
        parent,
        _name(_NODE_NAMES, _NODE_NAME_PREFIX, alias_data if alias else id_data),
        _KIND_TIMES.pack(0x30, 0x01, 0x39, ns(start), 0x41, end_ns),
        _NODE_ID.prefix(len(id_data)),
        id_data,
        _NODE_TYPE.attribute(node_type),
        _NODE_OUTCOME.attribute(outcome),
        _ATTEMPTS[attempt]
        if 0 <= attempt < len(_ATTEMPTS)
        else _int_attribute(_SPAN_ATTRIBUTE, "requence.node.attempt", attempt),
    ]
    if alias:
        parts.append(_NODE_ALIAS.prefix(len(alias_data)))
        parts.append(alias_data)
    if outcome == "errored":
        parts.append(_event("exception", _EXCEPTION_MESSAGE, message, end_ns))
        parts.append(_error_status(message))
        parts.append(_FLAGS)
    elif outcome == "deferred":
        parts.append(_event("requence.node.deferred", _DEFER_REASON, message, end_ns))
        parts.append(_STATUS_UNSET_FLAGS)
    else:
        parts.append(_STATUS_UNSET_FLAGS)
    span = b"".join(parts)
    out.append(_TAG2)  # ScopeSpans.spans = 2
    out.append(_varint(len(span)))
    out.append(span)


def encode_task(item: CompactTask) -> bytes:
    """The task's span followed by one span per node attempt, as `ScopeSpans.spans` fields."""
    task_id, name, root_id, start, end, outcome, message, incomplete, attempts = item
    # The trace id field and the tag of the span id, which every span of the task starts with.
    trace = _TRACE_ID + trace_id(task_id, root_id).to_bytes(16, "big") + _SPAN_ID
    span_id = task_span_id_bytes(task_id)
    id_data = task_id.encode()
    name_data = name.encode() if name else _UNNAMED
    parts = [trace, span_id]
    if root_id and root_id != task_id:
        # A sub-task hangs under its root task's span, in the root's trace.
        parts.append(_PARENT_ID)
        parts.append(task_span_id_bytes(root_id))
    parts += [
        _name(_TASK_NAMES, _TASK_NAME_PREFIX, name_data),
        _KIND_TIMES.pack(0x30, 0x01, 0x39, ns(start), 0x41, ns(end)),
        _TASK_ID.prefix(len(id_data)),
        id_data,
        _TASK_NAME.prefix(len(name_data)),
        name_data,
        _TASK_OUTCOME.attribute(outcome),
    ]
    if root_id:
        root_data = root_id.encode()
        parts.append(_TASK_ROOT_ID.prefix(len(root_data)))
        parts.append(root_data)
    if incomplete:
        parts.append(_TASK_INCOMPLETE)
    if outcome == "evicted":
        parts.append(_TASK_EVICTED)
    elif outcome == "aborted" and message is not None:
        reason = message.encode()
        parts.append(_TASK_ABORT_REASON.prefix(len(reason)))
        parts.append(reason)
    if outcome == "errored":
        parts.append(_error_status(message))
        parts.append(_FLAGS)
    else:
        parts.append(_STATUS_UNSET_FLAGS)
    span = b"".join(parts)
    out = [_TAG2, _varint(len(span)), span]
    parent = _PARENT_ID + span_id  # node spans are children of the task's span
    for a in attempts:
        _node_span(out, trace, parent, task_id, a)
    return b"".join(out)


# -- the request -----------------------------------------------------------------------------


class ResourceScope:
    """The encoded resource and instrumentation scope every span of a request sits under."""

    __slots__ = ("resource", "scope")

    def __init__(self, resource: bytes, scope: bytes) -> None:
        self.resource = resource  # ResourceSpans.resource = 1, with its tag and length
        self.scope = scope  # ScopeSpans.scope = 1, with its tag and length


def resource_scope(
    attributes: Iterable[tuple[str, str]], scope_name: str, scope_version: str
) -> ResourceScope:
    """The resource (string attributes, in order) and the scope (name, version)."""
    # Resource.attributes = 1.
    resource = b"".join(_string_attribute(_TAG1, k, v) for k, v in attributes)
    # InstrumentationScope: name = 1, version = 2; both left out when empty, as protobuf does.
    scope = b""
    if scope_name:
        scope += _delimited(_TAG1, scope_name.encode())
    if scope_version:
        scope += _delimited(_TAG2, scope_version.encode())
    return ResourceScope(_delimited(_TAG1, resource), _delimited(_TAG1, scope))


def export_request(head: ResourceScope, spans: list[bytes]) -> bytes:
    """An `ExportTraceServiceRequest` of one resource and scope holding the encoded spans."""
    body = b"".join(spans)
    scope_size = len(head.scope) + len(body)
    scope_spans = _TAG2 + _varint(scope_size)  # ResourceSpans.scope_spans = 2
    resource_size = len(head.resource) + len(scope_spans) + scope_size
    # ExportTraceServiceRequest.resource_spans = 1.
    return b"".join((_TAG1, _varint(resource_size), head.resource, scope_spans, head.scope, body))


# -- reading answers -------------------------------------------------------------------------
