"""Starting one span process and waiting until it says it is ready.

The spawn context, and the pipes to it (enlarged so a queue of batches fits).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

from exporter.traces.otlp_config import TracingSettings
from exporter.traces.span_process import LOG, READY, decode, main

__all__ = ["START_TIMEOUT", "SpanChild", "start_child"]

log = logging.getLogger(__name__)


START_TIMEOUT: Final = 30.0  # seconds a span process may take to get ready


# The pipe to the span process holds a whole queue of batches (2048 spans take ~200 KB), so
# handing one over never waits for the span process to read: with the default 64 KiB a batch
# of 512 spans filled it, and the stream waited in write() while the span process's reader
# thread waited for the GIL.
PIPE_SIZE: Final = 1 << 20
# "spawn": forking a process that runs threads (the stream's, httpx's) is unsafe.
_CONTEXT: Final = multiprocessing.get_context("spawn")


def _enlarge(conn: Connection) -> None:
    """Make a pipe hold PIPE_SIZE bytes where the system allows (Linux), else leave it."""
    try:
        import fcntl
    except ImportError:  # not a Unix
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:  # not Linux
        return
    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(conn.fileno(), set_size, PIPE_SIZE)


class SpanChild:
    """One span process with the two pipes to it."""

    def __init__(self, process: BaseProcess, tasks: Connection, replies: Connection) -> None:
        self.process = process
        self.tasks = tasks
        self.replies = replies

    def kill(self) -> None:
        """Stop it now, whatever it holds."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)

    def close(self) -> None:
        """Close the parent's ends of the pipes."""
        self.tasks.close()
        self.replies.close()


def await_ready(child: SpanChild) -> bool:
    """Read the span process's first messages until it says it is ready."""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while child.replies.poll(max(0.0, deadline - time.monotonic())):
            message = decode(child.replies.recv_bytes())
            if message[0] == READY:
                return True
            if message[0] == LOG:
                logging.getLogger(message[2]).log(message[1], message[3])
    except (EOFError, OSError):
        pass
    return False


def start_child(settings: TracingSettings, batch_size: int) -> SpanChild | None:
    """A started span process, once it says it is ready; None if it could not start."""
    tasks_in, tasks_out = _CONTEXT.Pipe(duplex=False)
    _enlarge(tasks_out)
    replies_in, replies_out = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(
        target=main,
        args=(
            tasks_in,
            replies_out,
            settings,
            batch_size,
            logging.getLogger().getEffectiveLevel(),
        ),
        name="requence-spans",
    )
    child = SpanChild(process, tasks_out, replies_in)
    try:
        process.start()
    except Exception:  # resources, a broken interpreter: spans are lost, metrics go on
        log.debug("traces: could not start the span process", exc_info=True)
        child.close()
        return None
    finally:
        # The child holds its own copies; ours would keep the pipes open after it exits.
        tasks_in.close()
        replies_out.close()
    if await_ready(child):
        return child
    child.kill()
    child.close()
    return None
