"""CPU per update at the trickle production sends: a steady `--rate` from the simulator, read as
it comes (about one update per read), by the bare floors and by the exporter's stream path.

Each reader connects with `since` = now (no backlog), lets `warmup` seconds pass, then counts the
updates it handles and the CPU seconds its process spends (`time.process_time`: every thread)
over `seconds`. Timers mark the window, so the exporter's path carries no counting of its own
beyond the one its handler does anyway.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

from bench.stream_runs import until_done
from exporter.app import Exporter
from exporter.config import settings_for
from exporter.requence.sse import RawEvent
from exporter.requence.stream import WatchStream
from exporter.requence.token import encode_token

__all__ = ["BEARER", "trickle_async_floor", "trickle_exporter", "trickle_sync_floor"]

BEARER = "bench"  # the simulator is started with this bearer token


def _request(base_url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    since = datetime.now(UTC).isoformat()
    return f"{base_url}/task/watch-all", {"Authorization": f"Bearer {BEARER}"}, {"since": since}


def _window(cpu: float, updates: int, reads: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu_seconds": cpu, "updates": updates}
    if reads is not None:
        out["reads"] = reads
    return out


def trickle_sync_floor(base_url: str, warmup: float, seconds: float) -> dict[str, Any]:
    """httpx.Client + httpx-sse + json.loads, counted over the window."""
    url, headers, body = _request(base_url)
    loads = json.loads
    begin = time.monotonic() + warmup
    end = begin + seconds
    counting = False
    updates = 0
    cpu = 0.0
    with (
        httpx.Client(trust_env=False, timeout=60.0) as client,
        connect_sse(client, "POST", url, json=body, headers=headers) as source,
    ):
        for event in source.iter_sse():
            loads(event.data)
            now = time.monotonic()
            if counting:
                updates += 1
                if now >= end:
                    return _window(time.process_time() - cpu, updates)
            elif now >= begin:
                counting = True
                cpu = time.process_time()
    raise RuntimeError("the simulator ended the stream")


async def trickle_async_floor(base_url: str, warmup: float, seconds: float) -> dict[str, Any]:
    """httpx.AsyncClient + httpx-sse + json.loads, counted over the window."""
    url, headers, body = _request(base_url)
    loads = json.loads
    begin = time.monotonic() + warmup
    end = begin + seconds
    counting = False
    updates = 0
    cpu = 0.0
    async with (
        httpx.AsyncClient(trust_env=False, timeout=60.0) as client,
        aconnect_sse(client, "POST", url, json=body, headers=headers) as source,
    ):
        async for event in source.aiter_sse():
            loads(event.data)
            now = time.monotonic()
            if counting:
                updates += 1
                if now >= end:
                    return _window(time.process_time() - cpu, updates)
            elif now >= begin:
                counting = True
                cpu = time.process_time()
    raise RuntimeError("the simulator ended the stream")


async def trickle_exporter(base_url: str, warmup: float, seconds: float) -> dict[str, Any]:
    """The exporter's stream path (WatchStream -> Pipeline -> Tracker -> Metrics, traces off)."""
    _, _, body = _request(base_url)
    env = {"REQUENCE_ACCESS_TOKEN": encode_token(BEARER, base_url)}
    settings = settings_for(["--since", body["since"], "--listen", "127.0.0.1:0"], env=env)
    exporter = Exporter(settings)
    feed = exporter.pipeline.feed
    handled = [0, 0]  # updates, reads

    def handler(events: Sequence[RawEvent], arrival: float) -> None:
        handled[0] += len(events)
        handled[1] += 1
        feed(events, arrival)

    loop = asyncio.get_running_loop()
    marks: list[tuple[float, int, int]] = []
    done = asyncio.Event()

    def mark() -> None:
        marks.append((time.process_time(), handled[0], handled[1]))
        if len(marks) == 2:
            done.set()

    async with httpx.AsyncClient(trust_env=False) as client:
        stream = WatchStream(
            client=client,
            credentials=settings.credentials,
            since=body["since"],
            status=exporter.status,
            handler=handler,
            read_timeout=settings.read_timeout,
            max_event_bytes=settings.max_event_bytes,
        )
        task = asyncio.create_task(stream.run())
        loop.call_later(warmup, mark)
        loop.call_later(warmup + seconds, mark)
        try:
            await until_done(done, task, exporter.status, warmup + seconds + 60.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    (cpu0, updates0, reads0), (cpu1, updates1, reads1) = marks
    if sum(exporter.status.reconnects.values()):
        raise RuntimeError("the exporter reconnected during the window")
    return _window(cpu1 - cpu0, updates1 - updates0, reads1 - reads0)
