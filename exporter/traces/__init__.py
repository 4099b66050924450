"""The traces sink: finished tasks become OTLP spans, encoded and sent in a second process.

`sink` (the tracker observer), `span_child` (starting the span process), `span_process`,
`spans` (the compact form tasks cross in), `otlp_wire` and `otlp_replies` (protobuf),
`otlp_transport` (HTTP and gRPC) and `otlp_config` (the `OTEL_*` settings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "ACK",
    "BSP_EXPORT_TIMEOUT",
    "BSP_MAX_EXPORT_BATCH_SIZE",
    "BSP_MAX_QUEUE_SIZE",
    "BSP_SCHEDULE_DELAY",
    "DEFAULT_SERVICE_NAME",
    "GRPC_METHOD",
    "LOG",
    "PROTOCOLS",
    "READY",
    "RETRYABLE_HTTP",
    "SCOPE_NAME",
    "START_TIMEOUT",
    "STOP",
    "Backoff",
    "CompactAttempt",
    "CompactTask",
    "ExportResult",
    "GrpcTransport",
    "HttpTransport",
    "ResourceScope",
    "SpanChild",
    "TraceSink",
    "TracingSettings",
    "Transport",
    "WireError",
    "build_trace_sink",
    "compact",
    "decode",
    "encode_task",
    "env_duration_ms",
    "env_positive_int",
    "export_request",
    "grpc_target",
    "main",
    "make_transport",
    "ns",
    "parse_headers",
    "parse_positive_int",
    "partial_success",
    "resource_scope",
    "retry_delay",
    "serve",
    "span_count",
    "start_child",
    "status_message",
]

if TYPE_CHECKING:
    from exporter.traces.otlp_config import (
        BSP_EXPORT_TIMEOUT,
        BSP_MAX_EXPORT_BATCH_SIZE,
        BSP_MAX_QUEUE_SIZE,
        BSP_SCHEDULE_DELAY,
        DEFAULT_SERVICE_NAME,
        PROTOCOLS,
        TracingSettings,
        env_duration_ms,
        env_positive_int,
        parse_headers,
        parse_positive_int,
    )
    from exporter.traces.otlp_replies import partial_success, retry_delay, status_message
    from exporter.traces.otlp_transport import (
        GRPC_METHOD,
        RETRYABLE_HTTP,
        Backoff,
        ExportResult,
        GrpcTransport,
        HttpTransport,
        Transport,
        grpc_target,
        make_transport,
    )
    from exporter.traces.otlp_wire import (
        SCOPE_NAME,
        ResourceScope,
        WireError,
        encode_task,
        export_request,
        ns,
        resource_scope,
    )
    from exporter.traces.sink import TraceSink, build_trace_sink
    from exporter.traces.span_child import START_TIMEOUT, SpanChild, start_child
    from exporter.traces.span_process import ACK, LOG, READY, STOP, decode, main, serve
    from exporter.traces.spans import CompactAttempt, CompactTask, compact, span_count
else:
    # Each name is imported from its module on first use, so importing the package
    # loads only the modules used (the span process, for one, never loads the metrics).
    from exporter.core import lazy_exports

    _MODULES = {
        "ACK": "exporter.traces.span_process",
        "BSP_EXPORT_TIMEOUT": "exporter.traces.otlp_config",
        "BSP_MAX_EXPORT_BATCH_SIZE": "exporter.traces.otlp_config",
        "BSP_MAX_QUEUE_SIZE": "exporter.traces.otlp_config",
        "BSP_SCHEDULE_DELAY": "exporter.traces.otlp_config",
        "Backoff": "exporter.traces.otlp_transport",
        "CompactAttempt": "exporter.traces.spans",
        "CompactTask": "exporter.traces.spans",
        "DEFAULT_SERVICE_NAME": "exporter.traces.otlp_config",
        "ExportResult": "exporter.traces.otlp_transport",
        "GRPC_METHOD": "exporter.traces.otlp_transport",
        "GrpcTransport": "exporter.traces.otlp_transport",
        "HttpTransport": "exporter.traces.otlp_transport",
        "LOG": "exporter.traces.span_process",
        "PROTOCOLS": "exporter.traces.otlp_config",
        "READY": "exporter.traces.span_process",
        "RETRYABLE_HTTP": "exporter.traces.otlp_transport",
        "ResourceScope": "exporter.traces.otlp_wire",
        "SCOPE_NAME": "exporter.traces.otlp_wire",
        "START_TIMEOUT": "exporter.traces.span_child",
        "STOP": "exporter.traces.span_process",
        "SpanChild": "exporter.traces.span_child",
        "TraceSink": "exporter.traces.sink",
        "TracingSettings": "exporter.traces.otlp_config",
        "Transport": "exporter.traces.otlp_transport",
        "WireError": "exporter.traces.otlp_wire",
        "build_trace_sink": "exporter.traces.sink",
        "compact": "exporter.traces.spans",
        "decode": "exporter.traces.span_process",
        "encode_task": "exporter.traces.otlp_wire",
        "env_duration_ms": "exporter.traces.otlp_config",
        "env_positive_int": "exporter.traces.otlp_config",
        "parse_headers": "exporter.traces.otlp_config",
        "export_request": "exporter.traces.otlp_wire",
        "grpc_target": "exporter.traces.otlp_transport",
        "main": "exporter.traces.span_process",
        "make_transport": "exporter.traces.otlp_transport",
        "ns": "exporter.traces.otlp_wire",
        "parse_positive_int": "exporter.traces.otlp_config",
        "partial_success": "exporter.traces.otlp_replies",
        "resource_scope": "exporter.traces.otlp_wire",
        "retry_delay": "exporter.traces.otlp_replies",
        "serve": "exporter.traces.span_process",
        "span_count": "exporter.traces.spans",
        "start_child": "exporter.traces.span_child",
        "status_message": "exporter.traces.otlp_replies",
    }

    __getattr__ = lazy_exports(globals(), _MODULES)
