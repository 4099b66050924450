"""The span process: encodes and exports the spans of the finished tasks the stream sends it.

It runs in a process of its own (started with "spawn" by `exporter.traces.sink.TraceSink`), so OTLP
encoding and sending use the second core instead of competing with the stream for the GIL. It
reads batches of marshalled compact finished tasks from one pipe, encodes them straight to OTLP
protobuf (`exporter.traces.otlp_wire`), sends them in requests of at most `max_export_batch_size`
spans (`exporter.traces.otlp_transport`) and answers on another pipe how many spans each export
delivered or lost, plus its log records, which the stream's process writes out. An empty
message asks it to export what it holds and exit; the parent's pipe closing (the parent is
gone) makes it exit at once.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, Final

from exporter import __version__
from exporter.traces import otlp_transport
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.otlp_transport import Transport, make_transport
from exporter.traces.otlp_wire import (
    SCOPE_NAME,
    ResourceScope,
    encode_task,
    export_request,
    resource_scope,
)
from exporter.traces.spans import CompactTask, span_count

__all__ = [
    "ACK",
    "LOG",
    "READY",
    "STOP",
    "decode",
    "main",
    "serve",
]

log = logging.getLogger(__name__)

STOP: Final = b""  # parent -> child: export what is held, then exit
# child -> parent, marshalled tuples:
READY: Final = "ready"  # (READY,): the transport is set up, batches are welcome
ACK: Final = "ack"  # (ACK, exported, dropped, reason): one export's outcome
LOG: Final = "log"  # (LOG, level, logger name, message): a log record to write out
LOG_INTERVAL: Final = 60.0  # seconds between two records of one export failure message


def decode(data: bytes) -> Any:
    """A message from the other end of a span process's pipes."""
    # Both ends are this program's own processes, over pipes nobody else holds: marshal is
    # safe here, and several times faster than pickle for plain tuples.
    return marshal.loads(data)  # noqa: S302


class _OncePer(logging.Filter):
    """Lets one record per message template through per interval: a dead back-end would
    otherwise log every failed batch."""

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
        self.abandoned = threading.Event()  # the parent is gone: nobody to export for
        self.changed = threading.Condition()

    def read(self) -> None:
        """Read batches until the stop message or the pipe closing."""
        while True:
            try:
                data = self._conn.recv_bytes()
            except (EOFError, OSError):
                with self.changed:
                    self.closing = True
                    self.abandoned.set()  # also ends a retry's wait
                    self.changed.notify()
                return
            # Each task was marshalled on its own (see exporter.traces.sink).
            tasks = [] if data == STOP else [decode(item) for item in decode(data)]
            with self.changed:
                if data == STOP:
                    self.closing = True
                else:
                    self.tasks.extend(tasks)
                self.changed.notify()
                if self.closing:
                    return

    def take(self, max_spans: int) -> list[CompactTask] | None:
        """Up to `max_spans` spans' worth of tasks (at least one); None once closing and empty."""
        with self.changed:
            while not self.tasks and not self.closing:
                self.changed.wait()
            if self.abandoned.is_set() or not self.tasks:
                return None
            batch = [self.tasks.popleft()]
            spans = span_count(batch[0])
            while self.tasks and spans + span_count(self.tasks[0]) <= max_spans:
                spans += span_count(self.tasks[0])
                batch.append(self.tasks.popleft())
            return batch


def _export(
    transport: Transport, head: ResourceScope, batch: list[CompactTask], replies: _Replies
) -> None:
    spans: list[bytes] = []
    count = lost = 0
    for item in batch:
        try:
            spans.append(encode_task(item))
            count += span_count(item)
        except Exception:  # a task that cannot be encoded costs its own spans only
            log.exception("traces: could not encode the spans of task %r", item[0])
            lost += span_count(item)
    if lost:
        replies.send((ACK, 0, lost, "encoding failed"))
    if not spans:
        return
    result = transport.export(export_request(head, spans), count)
    if not result.ok:
        replies.send((ACK, 0, count, "export failed"))
    elif result.rejected:
        rejected = min(result.rejected, count)
        replies.send((ACK, count - rejected, rejected, "rejected by the back-end"))
    else:
        replies.send((ACK, count, 0, ""))


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
    quiet = _OncePer(LOG_INTERVAL)
    for name in (otlp_transport.__name__, __name__):
        logging.getLogger(name).addFilter(quiet)
    inbox = _Inbox(tasks)
    try:
        transport = make_transport(settings, stop=inbox.abandoned)
    except Exception:
        log.exception("traces: could not set up the OTLP %s transport", settings.protocol)
        raise
    reader = threading.Thread(target=inbox.read, name="requence-spans-reader", daemon=True)
    reader.start()
    head = resource_scope(settings.resource().items(), SCOPE_NAME, __version__)
    replies.send((READY,))
    try:
        while (batch := inbox.take(max_export_batch_size)) is not None:
            _export(transport, head, batch, replies)
    finally:
        try:
            transport.close()
        except Exception as exc:  # stopping goes on whatever the transport does
            log.debug("traces: closing the transport raised", exc_info=exc)


def main(
    tasks: Connection,
    replies_conn: Connection,
    settings: TracingSettings,
    max_export_batch_size: int,
    log_level: int,
) -> None:
    """The span process's entry point: `serve`, then leave at once."""
    serve(tasks, replies_conn, settings, max_export_batch_size, log_level)
    # Every span is acknowledged and the transport closed: exit without the interpreter's
    # teardown, which freed the modules one by one and took ~75 ms of every stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
