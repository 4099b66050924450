"""The traces sink: a span per finished task and a child span per node attempt, over OTLP.

Spans are built after the fact from the tracker's `FinishedTask` with the recorded server
timestamps and deterministic ids (`exporter.ids`), so they go straight to an OTLP `SpanExporter`
as `ReadableSpan` values, without a tracer. A worker thread exports them in batches. A full
queue holds the caller back for a bounded time (the stream is resumable, so reading slower
loses nothing); past that bound spans are dropped and counted. Nothing here raises into the
caller: a dead back-end costs spans, never metrics.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from exporter import __version__
from exporter.decode import Update
from exporter.ids import node_span_id, task_span_id, trace_id
from exporter.otlp_config import (
    BSP_EXPORT_TIMEOUT,
    BSP_MAX_EXPORT_BATCH_SIZE,
    BSP_MAX_QUEUE_SIZE,
    BSP_SCHEDULE_DELAY,
    DEFAULT_BLOCK_TIMEOUT,
    TracingSettings,
    env_duration_ms,
    env_positive_int,
)
from exporter.tracker import UNNAMED, FinishedTask, NodeAttempt, TaskState

__all__ = ["TraceSink", "build_resource", "build_trace_sink", "task_spans"]

log = logging.getLogger(__name__)

_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_SCOPE: Final = InstrumentationScope("requence-exporter", __version__)
_OK: Final = Status(StatusCode.UNSET)
_INTERNAL: Final = SpanKind.INTERNAL
LOG_INTERVAL: Final = 60.0  # seconds between two warnings about failed or dropped spans


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


class TraceSink:
    """A tracker observer that exports finished tasks as spans from its own worker thread."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        resource: Resource,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay: float | None = None,
        export_timeout: float | None = None,
        block_timeout: float = DEFAULT_BLOCK_TIMEOUT,
        log_interval: float = LOG_INTERVAL,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._exporter = exporter
        self._resource = resource
        self.max_queue_size = max_queue_size or env_positive_int(env, *BSP_MAX_QUEUE_SIZE)
        batch = max_export_batch_size or env_positive_int(env, *BSP_MAX_EXPORT_BATCH_SIZE)
        self.max_export_batch_size = min(batch, self.max_queue_size)
        self.schedule_delay = (
            env_duration_ms(env, *BSP_SCHEDULE_DELAY) if schedule_delay is None else schedule_delay
        )
        self.export_timeout = (
            env_duration_ms(env, *BSP_EXPORT_TIMEOUT) if export_timeout is None else export_timeout
        )
        self.block_timeout = block_timeout
        self._log_interval = log_interval
        self.exported = 0  # spans the back-end accepted
        self.dropped = 0  # spans lost: queue full past the bound, export failed, or stopped
        self._queue: deque[FinishedTask] = deque()
        self._queued = 0  # spans in the queue (a task is 1 + its attempts)
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        # When the current stall's blocking budget runs out; reset once an export succeeds,
        # so a dead back-end holds the stream back once, not once per task.
        self._stall_deadline: float | None = None
        self._blocked = 0  # callers waiting for room
        self._closing = False
        self._stopped = False
        self._unlogged: dict[str, int] = {}
        self._next_log = 0.0
        self._worker = threading.Thread(target=self._run, name="requence-traces", daemon=True)
        self._worker.start()

    # -- the tracker observer ------------------------------------------------------------

    def on_update(self, update: Update, task: TaskState) -> None:
        """Spans are built when a task finishes; single updates need nothing."""

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        """Attempts arrive with their finished task."""

    def on_task_finished(self, task: FinishedTask) -> None:
        """Queue the task's spans; wait a bounded time when the queue is full, else drop."""
        count = 1 + len(task.attempts)
        with self._lock:
            if self._closing:
                self._drop(count, "stopped")
                return
            # A task larger than the whole queue still goes in, alone.
            while self._queued and self._queued + count > self.max_queue_size:
                now = time.monotonic()
                if self._stall_deadline is None:
                    self._stall_deadline = now + self.block_timeout
                remaining = self._stall_deadline - now
                if remaining <= 0 or self._closing:
                    self._drop(count, "queue full")
                    return
                # The queue may be full below a batch's size: export now, not on schedule.
                self._blocked += 1
                self._not_empty.notify()
                self._not_full.wait(remaining)
                self._blocked -= 1
            self._queue.append(task)
            self._queued += count
            if self._queued >= self.max_export_batch_size:
                self._not_empty.notify()

    def stats(self) -> dict[str, int]:
        """Spans exported and dropped so far, and spans waiting in the queue."""
        with self._lock:
            return {"exported": self.exported, "dropped": self.dropped, "queued": self._queued}

    # -- the worker ----------------------------------------------------------------------

    def _take_batch(self) -> list[FinishedTask] | None:
        """Wait for a full batch or the schedule delay; None once closing and drained."""
        with self._lock:
            deadline = time.monotonic() + self.schedule_delay
            while (
                self._queued < self.max_export_batch_size
                and not self._closing
                and not self._blocked
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._not_empty.wait(remaining)
            if not self._queue:
                return None if self._closing else []
            batch: list[FinishedTask] = []
            spans = 0
            while self._queue and (
                not batch or spans + 1 + len(self._queue[0].attempts) <= self.max_export_batch_size
            ):
                task = self._queue.popleft()
                batch.append(task)
                spans += 1 + len(task.attempts)
            self._queued -= spans
            self._not_full.notify_all()
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            if batch:
                self._export(batch)

    def _export(self, batch: list[FinishedTask]) -> None:
        try:
            spans = [span for task in batch for span in task_spans(task, self._resource)]
        except Exception:  # a bug in building spans must not kill the worker
            log.exception("traces: could not build spans")
            with self._lock:
                self._drop(sum(1 + len(t.attempts) for t in batch), "build failed")
            return
        try:
            result = self._exporter.export(spans)
        except Exception as exc:  # exporters should not raise; one that does costs its batch
            log.debug("traces: export raised", exc_info=exc)
            failure = f"export raised {type(exc).__name__}"
        else:
            failure = "" if result is SpanExportResult.SUCCESS else "export failed"
        with self._lock:
            if failure:
                self._drop(len(spans), failure)
            else:
                self.exported += len(spans)
                self._stall_deadline = None
                self._not_full.notify_all()

    def _drop(self, count: int, reason: str) -> None:
        """Count dropped spans and warn at most once per interval. Caller holds the lock."""
        self.dropped += count
        self._unlogged[reason] = self._unlogged.get(reason, 0) + count
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + self._log_interval
            detail = ", ".join(f"{why}: {n}" for why, n in sorted(self._unlogged.items()))
            self._unlogged.clear()
            log.warning(
                "traces: spans dropped (%s); %d dropped and %d exported since start",
                detail,
                self.dropped,
                self.exported,
            )

    # -- stopping ------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        """Export what is queued (up to `timeout`, default the export timeout), then stop."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._closing = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
        self._worker.join(self.export_timeout if timeout is None else timeout)
        if self._worker.is_alive():
            with self._lock:
                left = self._queued
                self._queue.clear()
                self._queued = 0
                if left:
                    self._drop(left, "stopped before export")
        try:
            # Also aborts a retry still waiting inside the exporter.
            self._exporter.shutdown()
        except Exception as exc:  # stopping must go on whatever the exporter does
            log.debug("traces: exporter shutdown raised", exc_info=exc)
        self._worker.join(1.0)


class _OncePer(logging.Filter):
    """Lets one record per message template through per interval: a dead back-end would
    otherwise log every failed batch from inside the OTLP exporters."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        self._last[key] = now
        return True


_QUIET: Final = _OncePer(LOG_INTERVAL)
_OTLP_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)


def _make_exporter(settings: TracingSettings) -> SpanExporter:
    for name in _OTLP_LOGGERS:
        logging.getLogger(name).addFilter(_QUIET)  # adding the same filter twice is a no-op
    headers = dict(settings.headers) or None
    if settings.protocol == "grpc":
        from grpc import Compression as GrpcCompression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        gzip = settings.compression == "gzip"
        return GrpcSpanExporter(
            endpoint=settings.endpoint,
            headers=headers,
            timeout=settings.timeout,
            compression=GrpcCompression.Gzip if gzip else GrpcCompression.NoCompression,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=settings.endpoint,
        headers=headers,
        timeout=settings.timeout,
        compression=Compression(settings.compression),
    )


def build_trace_sink(settings: TracingSettings) -> TraceSink | None:
    """A started trace sink for these settings, or None when tracing is off."""
    if not settings.enabled:
        return None
    return TraceSink(
        _make_exporter(settings),
        resource=build_resource(settings),
        max_queue_size=settings.max_queue_size,
        max_export_batch_size=settings.max_export_batch_size,
        schedule_delay=settings.schedule_delay,
        export_timeout=settings.export_timeout,
        block_timeout=settings.block_timeout,
    )
