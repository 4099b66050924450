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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

from bench.servers import BEARER
from bench.stream_runs import bench_exporter, until_done
from exporter.requence.sse import RawEvent

__all__ = ["Marks", "Window", "trickle_async_floor", "trickle_exporter", "trickle_sync_floor"]


def _request(base_url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    since = datetime.now(UTC).isoformat()
    return f"{base_url}/task/watch-all", {"Authorization": f"Bearer {BEARER}"}, {"since": since}


class Window:
    """Counts what a floor reads between `warmup` and `warmup + seconds` from now."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.begin = time.monotonic() + warmup
        self.end = self.begin + seconds
        self.counting = False
        self.updates = 0
        self.cpu = 0.0

    def tick(self) -> dict[str, Any] | None:
        """One update read: the window's figures once it has closed, else None."""
        now = time.monotonic()
        if self.counting:
            self.updates += 1
            if now >= self.end:
                return {"cpu_seconds": time.process_time() - self.cpu, "updates": self.updates}
        elif now >= self.begin:
            self.counting = True
            self.cpu = time.process_time()
        return None


class Marks:
    """Counts what a reader of the exporter's pipeline handles, per read, and the process's
    CPU at two moments the event loop marks: no counting of time per update."""

    def __init__(self, feed: Callable[[Sequence[RawEvent], float], None]) -> None:
        self._feed = feed
        self.updates = 0
        self.reads = 0
        self.marks: list[tuple[float, int, int]] = []
        self.done = asyncio.Event()

    def handler(self, events: Sequence[RawEvent], arrival: float) -> None:
        """The stream's handler: count, then hand on to the pipeline."""
        self.updates += len(events)
        self.reads += 1
        self._feed(events, arrival)

    def arm(self, warmup: float, seconds: float) -> None:
        """Mark at `warmup` and at `warmup + seconds` from now."""
        loop = asyncio.get_running_loop()
        loop.call_later(warmup, self._mark)
        loop.call_later(warmup + seconds, self._mark)

    def _mark(self) -> None:
        self.marks.append((time.process_time(), self.updates, self.reads))
        if len(self.marks) == 2:
            self.done.set()

    def window(self) -> dict[str, Any]:
        """CPU seconds, updates and reads between the two marks."""
        (cpu0, updates0, reads0), (cpu1, updates1, reads1) = self.marks
        return {
            "cpu_seconds": cpu1 - cpu0,
            "updates": updates1 - updates0,
            "reads": reads1 - reads0,
        }


def trickle_sync_floor(base_url: str, warmup: float, seconds: float) -> dict[str, Any]:
    """httpx.Client + httpx-sse + json.loads, counted over the window."""
    url, headers, body = _request(base_url)
    loads = json.loads
    window = Window(warmup, seconds)
    with (
        httpx.Client(trust_env=False, timeout=60.0) as client,
        connect_sse(client, "POST", url, json=body, headers=headers) as source,
    ):
        for event in source.iter_sse():
            loads(event.data)
            if (done := window.tick()) is not None:
                return done
    raise RuntimeError("the simulator ended the stream")


async def trickle_async_floor(base_url: str, warmup: float, seconds: float) -> dict[str, Any]:
    """httpx.AsyncClient + httpx-sse + json.loads, counted over the window."""
    url, headers, body = _request(base_url)
    loads = json.loads
    window = Window(warmup, seconds)
    async with (
        httpx.AsyncClient(trust_env=False, timeout=60.0) as client,
        aconnect_sse(client, "POST", url, json=body, headers=headers) as source,
    ):
        async for event in source.aiter_sse():
            loads(event.data)
            if (done := window.tick()) is not None:
                return done
    raise RuntimeError("the simulator ended the stream")


async def trickle_exporter(
    base_url: str, warmup: float, seconds: float, reader: str = "auto"
) -> dict[str, Any]:
    """The exporter's stream path (WatchStream -> Pipeline -> Tracker -> Metrics, traces off)
    with the stream reader `reader`."""
    _, _, body = _request(base_url)
    exporter = bench_exporter(base_url, body["since"], reader=reader)
    marks = Marks(exporter.pipeline.feed)

    async with httpx.AsyncClient(trust_env=False) as client:
        stream = exporter.watch_stream(client, body["since"], marks.handler)
        task = asyncio.create_task(stream.run())
        marks.arm(warmup, seconds)
        try:
            await until_done(marks.done, task, exporter.status, warmup + seconds + 60.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if sum(exporter.status.reconnects.values()):
        raise RuntimeError("the exporter reconnected during the window")
    return marks.window()
