"""The traces sink: hands finished tasks to a span process that encodes and exports the spans.

The stream's process only flattens each `FinishedTask` into plain tuples (`exporter.traces.spans`)
and marshals them at once (while the task's objects are still in the CPU's caches: marshalling a
whole batch later costs ten times as much); a sender thread sends them in batches over a pipe to
a process of its own (`exporter.traces.span_process`), which encodes and exports them on the other
core and acknowledges every span it exported or lost. Spans not yet acknowledged are the queue
`max_queue_size` bounds. Handing a task over never waits, so the event loop never does: past the
bound its spans are dropped and counted. The stream is held back instead, between reads: while
the queue is half full, `backpressure()` gives it something to await, for a bounded time per
stall (the stream is resumable: reading slower loses nothing). A span process that dies costs
what it held, counted, and is started again. Nothing here raises: a dead back-end costs spans.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import multiprocessing
import multiprocessing.util
import threading
import time
import weakref
from collections.abc import Awaitable
from typing import Final

from exporter.core.logs import RateLimitedWarning
from exporter.core.tasks import FinishedTask, NodeAttempt, TaskState
from exporter.core.updates import Update
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.room import RoomWaiter
from exporter.traces.span_child import START_TIMEOUT, SpanChild, start_child
from exporter.traces.span_process import ACK, LOG, STOP, decode
from exporter.traces.spans import compact

__all__ = ["TraceSink", "build_trace_sink"]

log = logging.getLogger(__name__)

LOG_INTERVAL: Final = 60.0  # seconds between two warnings about failed or dropped spans
RESTART_INTERVAL: Final = 1.0  # seconds between two starts of the span process


class TraceSink:
    """A tracker observer that sends finished tasks to a span process for export."""

    def __init__(self, settings: TracingSettings, *, log_interval: float = LOG_INTERVAL) -> None:
        self._settings = settings
        self.max_queue_size = settings.max_queue_size
        self.max_export_batch_size = min(settings.max_export_batch_size, self.max_queue_size)
        self.schedule_delay = settings.schedule_delay
        self.export_timeout = settings.export_timeout  # bounds a flush on stop
        self.block_timeout = settings.block_timeout
        # The stream waits while half the queue is taken: what one read finishes fits the rest.
        self.high_water = max(1, self.max_queue_size // 2)
        self.exported = 0  # spans the back-end accepted
        self.dropped = 0  # spans lost: queue full past the bound, export failed, or stopped
        self._batch: list[bytes] = []  # the batch being filled: marshalled compact tasks
        self._batch_spans = 0
        self._batch_since = 0.0  # when its first task came
        self._full: list[tuple[list[bytes], int]] = []  # batches for the sender thread
        self._sending = 0  # spans of batches taken and not yet handed over
        self._unacked = 0  # spans handed to the span process and not yet acknowledged
        self._room = RoomWaiter()  # the stream, waiting for room
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # acknowledgements, the process leaving
        self._due = threading.Condition(self._lock)  # a batch is waiting for the sender
        self._send_lock = threading.Lock()  # one message at a time on the pipe
        # When the current stall's budget runs out; reset once an export succeeds, so a dead
        # back-end holds the stream back once. Read by the loop, set by the reply reader.
        self._stall_deadline: float | None = None
        self._closing = False
        self._stopped = False
        self._warn_drops = RateLimitedWarning(log, log_interval)
        self._warn_exits = RateLimitedWarning(log, log_interval, level=logging.ERROR)
        self._child: SpanChild | None = None
        self._ready = threading.Event()  # the first span process started, or failed to
        _LIVE.add(self)
        self._keeper = threading.Thread(target=self._keep, name="requence-spans", daemon=True)
        self._keeper.start()
        self._ready.wait(START_TIMEOUT + 5.0)  # spans sent before would wait in the pipe
        self._sender = threading.Thread(target=self._send_due, name="requence-traces", daemon=True)
        self._sender.start()

    # -- the tracker observer ------------------------------------------------------------

    def on_update(self, update: Update, task: TaskState) -> None:
        """Spans are built when a task finishes; single updates need nothing."""

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        """Attempts arrive with their finished task."""

    def on_task_finished(self, task: FinishedTask) -> None:
        """Queue the task for the sender thread, or drop it when the queue is full; never wait."""
        item = compact(task)
        count = 1 + len(item[8])
        data = marshal.dumps(item)
        with self._lock:
            if self._closing:
                self._drop(count, "stopped")
                return
            queued = self._batch_spans + self._sending + self._unacked
            # A task larger than the whole queue still goes in, alone.
            if queued and queued + count > self.max_queue_size:
                self._drop(count, "queue full")
                return
            if self._batch_spans and self._batch_spans + count > self.max_export_batch_size:
                self._full.append(self._take())
            self._batch.append(data)
            self._batch_spans += count
            if self._batch_spans >= self.max_export_batch_size:
                self._full.append(self._take())
            elif len(self._batch) == 1:
                self._batch_since = time.monotonic()
            if self._full or len(self._batch) == 1:
                self._due.notify()

    def backpressure(self) -> Awaitable[None] | None:
        """None while the queue is less than half full; else something for the stream to await
        (between reads, with the event loop free) until it has room or the stall budget ends."""
        if self._closing or self._batch_spans + self._sending + self._unacked < self.high_water:
            return None
        return self._wait_for_room()

    async def _wait_for_room(self) -> None:
        with self._lock:
            if self._batch:  # a queue half full below a batch's size: send it now
                self._full.append(self._take())
                self._due.notify()
        await self._room.wait(self._stall_left)

    def _stall_left(self) -> float | None:
        """Seconds the stream may still wait for room; None once there is room."""
        with self._lock:
            if self._closing or self._batch_spans + self._sending + self._unacked < self.high_water:
                return None
            now = time.monotonic()
            if self._stall_deadline is None:  # a new stall, or an export succeeded meanwhile
                self._stall_deadline = now + self.block_timeout
            return self._stall_deadline - now

    def stats(self) -> dict[str, int]:
        """Spans exported and dropped so far, and spans queued (batched or being exported)."""
        with self._lock:
            return {
                "exported": self.exported,
                "dropped": self.dropped,
                "queued": self._batch_spans + self._sending + self._unacked,
            }

    @property
    def pid(self) -> int | None:
        """The span process's id, while one runs."""
        with self._lock:
            child = self._child
        return None if child is None else child.process.pid

    # -- sending -------------------------------------------------------------------------

    def _take(self) -> tuple[list[bytes], int]:
        """The batch being filled and its span count; the caller holds the lock."""
        batch, spans = self._batch, self._batch_spans
        self._batch = []
        self._batch_spans = 0
        self._sending += spans  # still queued until the span process has it
        return batch, spans

    def _send(self, batch: list[bytes], spans: int) -> None:
        """Hand a batch to the span process, or count it dropped when there is none."""
        data = marshal.dumps(batch)
        with self._send_lock:
            with self._lock:
                self._sending -= spans
                child = self._child
                if child is None:
                    self._drop(spans, "no span process")
                    self._changed.notify_all()
                    self._room.wake()
                    return
                self._unacked += spans
            try:
                child.tasks.send_bytes(data)
            except (OSError, ValueError):
                with self._lock:
                    # Unless its leaving was handled first, which counted these spans already.
                    if self._child is child:
                        self._unacked -= spans
                        self._drop(spans, "span process gone")
                        self._changed.notify_all()

    def _send_due(self) -> None:
        """The sender thread: full batches go out at once, a partial one after the schedule
        delay. Only this thread (and `shutdown`) writes to the pipe, which may block."""
        while True:
            with self._lock:
                while True:
                    if self._closing:
                        return
                    if self._full:
                        pending = self._full.pop(0)
                        break
                    if self._batch:
                        wait = self._batch_since + self.schedule_delay - time.monotonic()
                        if wait <= 0:
                            pending = self._take()
                            break
                        self._due.wait(wait)
                    else:
                        self._due.wait()
            self._send(*pending)

    # -- the span process ----------------------------------------------------------------

    def _keep(self) -> None:
        """The keeper thread: runs a span process, reads its replies, starts another if it dies."""
        while True:
            child = start_child(self._settings, self.max_export_batch_size)
            with self._lock:
                accepted = child is not None and not self._closing
                if accepted:
                    self._child = child
                elif child is None and not self._closing:
                    self._log_exit("traces: the span process did not start; spans are dropped")
            self._ready.set()
            if child is not None and accepted:
                self._read_replies(child)
                self._child_gone(child)
            elif child is not None:  # stopped while it started: it holds nothing
                child.kill()
                child.close()
            with self._lock:
                # Not at once: a process that dies on start would be restarted in a loop.
                restart_at = time.monotonic() + RESTART_INTERVAL
                while not self._closing and (wait := restart_at - time.monotonic()) > 0:
                    self._changed.wait(wait)
                if self._closing:
                    return

    def _read_replies(self, child: SpanChild) -> None:
        """Acknowledgements and log records from a span process, until it exits."""
        while True:
            try:
                message = decode(child.replies.recv_bytes())
            except (EOFError, OSError):
                return
            if message[0] == ACK:
                _, exported, dropped, reason = message
                with self._lock:
                    self._unacked -= exported + dropped
                    if exported:
                        self.exported += exported
                        self._stall_deadline = None
                    if dropped:
                        self._drop(dropped, reason)
                    self._changed.notify_all()
                self._room.wake()
            elif message[0] == LOG:
                logging.getLogger(message[2]).log(message[1], message[3])

    def _child_gone(self, child: SpanChild) -> None:
        """The span process left: what it held is counted as dropped."""
        child.process.join(5.0)
        with self._lock:
            if self._child is child:
                self._child = None
            lost, self._unacked = self._unacked, 0
            if lost:
                reason = "stopped before export" if self._closing else "span process exited"
                self._drop(lost, reason)
            if not self._closing:
                self._log_exit(
                    "traces: the span process exited (code %s) holding %d spans, counted as "
                    "dropped; starting a new one",
                    child.process.exitcode,
                    lost,
                )
            self._changed.notify_all()
        self._room.wake()
        child.close()

    def _log_exit(self, message: str, *args: object) -> None:
        """Log a span process's failure, at most once per interval. Caller holds the lock."""
        self._warn_exits("span process", message, *args)

    def _drop(self, count: int, reason: str) -> None:
        """Count dropped spans and warn at most once per interval. Caller holds the lock."""
        self.dropped += count
        self._warn_drops(
            reason,
            "traces: %d spans dropped (%s); %d dropped and %d exported since start",
            count,
            reason,
            self.dropped,
            self.exported,
            count=count,
        )

    # -- stopping ------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        """Export what is queued (up to `timeout`, default the export timeout), then stop."""
        deadline = time.monotonic() + (self.export_timeout if timeout is None else timeout)
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._closing = True
            unsent = [*self._full, *([self._take()] if self._batch else [])]
            self._full = []
            self._due.notify_all()
            self._changed.notify_all()
        self._room.wake()
        for batch in unsent:
            self._send(*batch)
        with self._lock:
            child = self._child
        if child is not None:
            # When it is gone already, its reader counts what it held.
            with self._send_lock, contextlib.suppress(OSError, ValueError):
                child.tasks.send_bytes(STOP)
            with self._lock:
                while self._unacked and self._child is child:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
            child.process.join(max(0.0, deadline - time.monotonic()))
            # Past the deadline: stop it, which also aborts a retry still waiting in it.
            child.kill()
        self._keeper.join(5.0)
        with self._lock:
            if self._unacked:
                lost, self._unacked = self._unacked, 0
                self._drop(lost, "stopped before export")
        self._sender.join(1.0)
        _LIVE.discard(self)

    def _abandon(self) -> None:
        """At interpreter exit without a shutdown: stop the span process, losing what it holds."""
        with self._lock:
            self._closing = True
            child = self._child
            self._due.notify_all()
            self._changed.notify_all()
        if child is not None:
            child.kill()


_LIVE: Final[weakref.WeakSet[TraceSink]] = weakref.WeakSet()


def _abandon_all() -> None:
    for sink in list(_LIVE):
        sink._abandon()


# multiprocessing's exit handler joins every child process; a span process ignores SIGTERM and
# waits for its parent's word, so a sink never shut down stops it first (a finalizer with an
# exit priority runs before those joins).
multiprocessing.util.Finalize(None, _abandon_all, exitpriority=100)


def build_trace_sink(settings: TracingSettings) -> TraceSink | None:
    """A started trace sink for these settings, or None when tracing is off."""
    if not settings.enabled:
        return None
    return TraceSink(settings)
