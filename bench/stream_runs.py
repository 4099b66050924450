"""Timed reads of the served stream: the raw socket, bare httpx-sse (with and without JSON
parsing; synchronous, the floor, and asynchronous) and the exporter's own path (WatchStream ->
Pipeline -> Tracker -> Metrics, optionally with the trace sink exporting to a discarding OTLP
endpoint).

Every run is timed from the moment it starts connecting to the moment the last position has
been processed; a traced run also reports how long flushing its remaining spans took, and the
CPU time its span process spent after start-up (Linux: from /proc and the reaped child's usage).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import time
from collections.abc import Sequence
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

from bench.servers import BEARER
from exporter.app import Exporter
from exporter.config import settings_for
from exporter.core.status import StreamStatus
from exporter.requence.sse import RawEvent
from exporter.requence.token import encode_token

__all__ = [
    "bench_exporter",
    "exporter_run",
    "raw_floor",
    "sse_floor",
    "sync_floor",
    "until_done",
]


def _children_cpu() -> float:
    """CPU seconds of every reaped child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int | None) -> float | None:
    """CPU seconds a running process has used so far, where /proc tells."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SINCE = "2026-01-01T00:00:00Z"
_TIMEOUT = 300.0  # seconds any single run may take before the harness gives up on it


def raw_floor(port: int, path: str, expected: int) -> float:
    """Seconds to read `expected` body bytes over a plain socket, as fast as recv allows."""
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path}/task/watch-all HTTP/1.1\r\nHost: bench\r\n"
            "Content-Length: 2\r\n\r\n{}".encode()
        )
        received = 0
        head_left = True
        while True:
            n = sock.recv_into(view)
            if not n:
                raise RuntimeError("the feed closed before the whole body was read")
            if head_left:
                end = bytes(view[:n]).find(b"\r\n\r\n")
                if end >= 0:
                    head_left = False
                    received += n - end - 4
                continue
            received += n
            if received >= expected:
                break
    return time.perf_counter() - start


def sync_floor(base_url: str, last_position: int) -> float:
    """Seconds for httpx.Client + httpx-sse to iterate every event and json.loads each one:
    the floor every reader is compared with."""
    last_id = str(last_position)
    loads = json.loads
    with httpx.Client(trust_env=False, timeout=_TIMEOUT) as client:
        start = time.perf_counter()
        with connect_sse(
            client, "POST", f"{base_url}/task/watch-all", json={"since": SINCE}
        ) as source:
            for event in source.iter_sse():
                loads(event.data)
                if event.id == last_id:
                    break
        return time.perf_counter() - start


async def sse_floor(base_url: str, last_position: int, *, parse_json: bool) -> float:
    """Seconds for httpx + httpx-sse to iterate every event (and json.loads each one)."""
    last_id = str(last_position)
    loads = json.loads
    async with httpx.AsyncClient(trust_env=False, timeout=_TIMEOUT) as client:
        start = time.perf_counter()
        async with aconnect_sse(
            client, "POST", f"{base_url}/task/watch-all", json={"since": SINCE}
        ) as source:
            async for event in source.aiter_sse():
                if parse_json:
                    loads(event.data)
                if event.id == last_id:
                    break
        return time.perf_counter() - start


async def until_done(
    done: asyncio.Event, stream: asyncio.Task[None], status: StreamStatus, within: float
) -> None:
    """Wait for `done`; raise what ended the stream task, or say where it stood at the timeout."""
    waiter = asyncio.create_task(done.wait())
    finished, _ = await asyncio.wait(
        {waiter, stream}, timeout=within, return_when=asyncio.FIRST_COMPLETED
    )
    waiter.cancel()
    if waiter in finished:
        return
    if stream in finished:
        stream.result()  # raises what ended it
        raise RuntimeError("the stream task ended")
    raise RuntimeError(
        f"not done within {within:g}s: at position {status.position}, "
        f"{status.connections} connections, reconnects {dict(status.reconnects)}"
    )


def bench_exporter(
    base_url: str, since: str, otlp_endpoint: str | None = None, reader: str = "auto"
) -> Exporter:
    """The exporter as `run` builds it from its settings, reading `base_url` from `since` with
    the stream reader `reader`."""
    env = {
        "REQUENCE_ACCESS_TOKEN": encode_token(BEARER, base_url),
        "REQUENCE_EXPORTER_STREAM_READER": reader,
    }
    # `REQUENCE_EXPORTER_GATHER_READS=0 make bench` measures another --gather-reads.
    gather = os.environ.get("REQUENCE_EXPORTER_GATHER_READS")
    if gather is not None:
        env["REQUENCE_EXPORTER_GATHER_READS"] = gather
    if otlp_endpoint is not None:
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = otlp_endpoint
    return Exporter(settings_for(["--since", since, "--listen", "127.0.0.1:0"], env=env))


async def exporter_run(
    base_url: str, last_position: int, *, otlp_endpoint: str | None = None, reader: str = "auto"
) -> dict[str, Any]:
    """One run of the exporter's stream path; its timing and what it counted."""
    children = _children_cpu()
    exporter = bench_exporter(base_url, SINCE, otlp_endpoint, reader)
    # What the span process spent starting (imports) is not part of the run.
    started = _process_cpu(exporter.traces.pid) if exporter.traces is not None else None
    status = exporter.status
    feed = exporter.pipeline.feed
    done = asyncio.Event()

    def handler(events: Sequence[RawEvent], arrival: float) -> None:
        feed(events, arrival)
        if status.position == last_position:
            done.set()

    flush = 0.0
    async with httpx.AsyncClient(trust_env=False) as client:
        stream = exporter.watch_stream(client, SINCE, handler)
        start = time.perf_counter()
        task = asyncio.create_task(stream.run())
        try:
            await until_done(done, task, status, _TIMEOUT)
            elapsed = time.perf_counter() - start
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    result: dict[str, Any] = {
        "seconds": elapsed,
        "updates": sum(exporter.metrics.updates_by_type().values()),
        "tracked_tasks": len(exporter.tracker),
        "reconnects": sum(status.reconnects.values()),
    }
    if exporter.traces is not None:
        begin = time.perf_counter()
        await asyncio.to_thread(exporter.traces.shutdown)
        flush = time.perf_counter() - begin
        result.update(
            flush_seconds=flush,
            spans_exported=exporter.traces.exported,
            spans_dropped=exporter.traces.dropped,
        )
        if started is not None:  # the span process is reaped by now: its usage is counted
            result["span_process_cpu_seconds"] = _children_cpu() - children - started
    return result
