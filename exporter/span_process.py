"""The span process: builds, encodes and exports the spans the stream's process sends it.

It runs in a process of its own (started with "spawn" by `exporter.traces.TraceSink`), so span
building and OTLP encoding use the second core instead of competing with the stream for the
GIL. It reads marshalled batches of compact finished tasks from one pipe, exports them in
batches of at most `max_export_batch_size` spans and answers on another pipe how many spans
each export delivered or lost, plus its log records, which the stream's process writes out.
An empty message asks it to export what it holds and exit; the parent's pipe closing (the
parent is gone) makes it exit at once.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import signal
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from exporter.otlp_config import TracingSettings
from exporter.spans import CompactTask, build_resource, expand, span_count, task_spans

__all__ = [
    "ACK",
    "LOG",
    "READY",
    "STOP",
    "decode",
    "make_exporter",
    "serve",
]

log = logging.getLogger(__name__)

STOP: Final = b""  # parent -> child: export what is held, then exit
# child -> parent, marshalled tuples:
READY: Final = "ready"  # (READY,): the exporter is built, batches are welcome
ACK: Final = "ack"  # (ACK, exported, dropped, reason): one export's outcome
LOG: Final = "log"  # (LOG, level, logger name, message): a log record to write out
LOG_INTERVAL: Final = 60.0  # seconds between two records of one OTLP exporter message


def decode(data: bytes) -> Any:
    """A message from the other end of a span process's pipes."""
    # Both ends are this program's own processes, over pipes nobody else holds: marshal is
    # safe here, and several times faster than pickle for plain tuples.
    return marshal.loads(data)  # noqa: S302


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


def make_exporter(settings: TracingSettings) -> SpanExporter:
    """The OTLP span exporter (HTTP/protobuf or gRPC) the settings describe."""
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


class _Replies:
    """The pipe back to the parent, shared by the export loop and log records of any thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple[str | int, ...]) -> None:
        """Send one marshalled message; a parent that is gone is not an error here."""
        data = marshal.dumps(message)
        # The parent left: the reader sees the pipe close and ends the loop.
        with self._lock, contextlib.suppress(OSError):
            self._conn.send_bytes(data)


class _Forward(logging.Handler):
    """Hands log records to the parent, which formats and writes them with its own set-up."""

    def __init__(self, replies: _Replies) -> None:
        super().__init__()
        self._replies = replies

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self._replies.send((LOG, record.levelno, record.name, text))
        except Exception:  # logging must never break exporting
            self.handleError(record)


class _Inbox:
    """Compact tasks read from the parent, drained by the export loop."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.tasks: deque[CompactTask] = deque()
        self.closing = False
        self.abandoned = False  # the parent is gone: nobody to export for
        self.changed = threading.Condition()

    def read(self) -> None:
        """Read batches until the stop message or the pipe closing."""
        while True:
            try:
                data = self._conn.recv_bytes()
            except (EOFError, OSError):
                with self.changed:
                    self.closing = self.abandoned = True
                    self.changed.notify()
                return
            with self.changed:
                if data == STOP:
                    self.closing = True
                else:
                    self.tasks.extend(decode(data))
                self.changed.notify()
                if self.closing:
                    return

    def take(self, max_spans: int) -> list[CompactTask] | None:
        """Up to `max_spans` spans' worth of tasks (at least one); None once closing and empty."""
        with self.changed:
            while not self.tasks and not self.closing:
                self.changed.wait()
            if self.abandoned or not self.tasks:
                return None
            batch = [self.tasks.popleft()]
            spans = span_count(batch[0])
            while self.tasks and spans + span_count(self.tasks[0]) <= max_spans:
                spans += span_count(self.tasks[0])
                batch.append(self.tasks.popleft())
            return batch


def _export(
    exporter: SpanExporter, resource: Resource, batch: list[CompactTask], replies: _Replies
) -> None:
    count = sum(span_count(item) for item in batch)
    try:
        spans = [span for item in batch for span in task_spans(expand(item), resource)]
    except Exception:  # a bug in building spans costs its batch, not the process
        log.exception("traces: could not build spans")
        replies.send((ACK, 0, count, "build failed"))
        return
    try:
        result = exporter.export(spans)
    except Exception as exc:  # exporters should not raise; one that does costs its batch
        log.debug("traces: export raised", exc_info=exc)
        replies.send((ACK, 0, count, f"export raised {type(exc).__name__}"))
        return
    if result is SpanExportResult.SUCCESS:
        replies.send((ACK, count, 0, ""))
    else:
        replies.send((ACK, 0, count, "export failed"))


def serve(
    tasks: Connection,
    replies_conn: Connection,
    settings: TracingSettings,
    max_export_batch_size: int,
    log_level: int,
) -> None:
    """The span process's main: export what arrives on `tasks` until told to stop."""
    # Ctrl-C reaches the whole process group and an orchestrator may signal it too: the
    # parent decides when this process stops, after it has flushed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = _Replies(replies_conn)
    root = logging.getLogger()
    root.handlers[:] = [_Forward(replies)]
    root.setLevel(log_level)
    exporter = make_exporter(settings)
    inbox = _Inbox(tasks)
    reader = threading.Thread(target=inbox.read, name="requence-spans-reader", daemon=True)
    reader.start()
    resource = build_resource(settings)
    replies.send((READY,))
    try:
        while (batch := inbox.take(max_export_batch_size)) is not None:
            _export(exporter, resource, batch, replies)
    finally:
        try:
            exporter.shutdown()
        except Exception as exc:  # stopping goes on whatever the exporter does
            log.debug("traces: exporter shutdown raised", exc_info=exc)
