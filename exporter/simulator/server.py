"""A Requence watch-all server fed by the simulated workload, in real time.

Updates are stamped with the wall-clock time they are emitted, numbered with strictly increasing
positions, and kept in a bounded history so a client can resume with `lastPosition` or filter with
`since`. Acknowledgements are recorded, never required: an observer must not send them.

The same server is the files service the payloads' references point at (`GET /files/...`,
without a token, since the SDK fetches reference URLs without one): see `exporter.simulator.files`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import NamedTuple

import orjson

from exporter.serving.http_exchange import Request, Responder, Stream
from exporter.simulator.files import FILES_PREFIX, localize, serve_file
from exporter.simulator.protocol import (
    ACK_PREFIX,
    EVENT_STREAM_HEADERS,
    KEEP_ALIVE,
    WATCH_PATH,
    BadWatchRequest,
    RecordedRequest,
    WatchServer,
    authorized,
    parse_watch_body,
    record,
    send_json,
    sse_event,
)
from exporter.simulator.workload import Workload, WorkloadUpdate, format_timestamp

__all__ = ["WatchAllSimulator", "serve_simulator"]

logger = logging.getLogger(__name__)

_BATCH = 1000  # events per write to one client; bounds the size of a single write
_YIELD_EVERY = 500  # updates emitted before the producer lets subscribers run


class _Entry(NamedTuple):
    position: int
    timestamp: float
    payload: bytes


class WatchAllSimulator(WatchServer):
    """Serves `POST /task/watch-all` and `POST /task/ack/{id}` from a workload, in real time."""

    def __init__(
        self,
        *,
        bearer: str,
        workload: Iterable[WorkloadUpdate] | None = None,
        seed: int = 1,
        rate: float = 50.0,
        time_scale: float = 0.1,
        history: int = 200_000,
        keep_alive: float = 5.0,
        first_position: int = 1,
    ) -> None:
        super().__init__(bearer)
        self.workload = (
            workload if workload is not None else Workload(seed, rate=rate, time_scale=time_scale)
        )
        self.history = history
        self.keep_alive = keep_alive
        self.acks: list[str] = []
        self.requests: deque[RecordedRequest] = deque(maxlen=1000)
        self._entries: list[_Entry] = []
        self._next_position = first_position
        self._last_ms = 0
        self._wakeup = asyncio.Event()
        self._producer: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """The position of the last update emitted (one below the first position before any)."""
        return self._next_position - 1

    @property
    def emitted(self) -> int:
        """How many updates are in the history (it drops the oldest past its bound)."""
        return len(self._entries)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen and start emitting the workload; return the bound address."""
        address = await super().start(host, port)
        self._producer = asyncio.create_task(self._produce(iter(self.workload)))
        return address

    async def wait_for_position(self, position: int) -> None:
        """Wait until the update at `position` has been emitted (bound it with a timeout)."""
        while self.position < position:
            await self._wakeup.wait()

    async def aclose(self) -> None:
        """Stop emitting and close every connection."""
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
        await super().aclose()

    def _notify(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def _produce(self, updates: Iterator[WorkloadUpdate]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        pending = 0
        for update in updates:
            delay = started + update.offset - loop.time()
            if delay > 0:
                self._notify()
                pending = 0
                await asyncio.sleep(delay)
            self._append(update)
            pending += 1
            if pending >= _YIELD_EVERY:
                # Running late (a high rate): let subscribers catch up between bursts.
                self._notify()
                pending = 0
                await asyncio.sleep(0)
        self._notify()

    def _append(self, update: WorkloadUpdate) -> None:
        # Timestamps are emission times, never earlier than the previous one: positions and
        # timestamps grow together, which is what lets `since` and `lastPosition` agree.
        millis = max(math.floor(time.time() * 1000), self._last_ms)
        self._last_ms = millis
        data = dict(update.data)
        data["timestamp"] = format_timestamp(millis / 1000)
        position = self._next_position
        self._next_position += 1
        payload = sse_event(update.type, position, localize(orjson.dumps(data), self.base_url))
        self._entries.append(_Entry(position, millis / 1000, payload))
        if len(self._entries) > self.history + self.history // 4:
            del self._entries[: len(self._entries) - self.history]

    async def _handle(self, request: Request, respond: Responder) -> None:
        self.requests.append(record(request))
        if request.path.startswith(FILES_PREFIX) and request.method == "GET":
            # Building a large body takes a while: off the loop, so the streams keep flowing.
            status, headers, body = await asyncio.to_thread(
                serve_file, request.path, request.headers, self.base_url
            )
            respond.send(status, headers, body)
            return
        if request.path != WATCH_PATH and not request.path.startswith(ACK_PREFIX):
            send_json(respond, 404, {"error": "not found"})
            return
        if request.method != "POST":
            send_json(respond, 405, {"error": "method not allowed"})
            return
        if not authorized(request, self.bearer):
            send_json(respond, 401, {"error": "unauthorized"})
            return
        if request.path.startswith(ACK_PREFIX):
            self.acks.append(request.path.removeprefix(ACK_PREFIX))
            send_json(respond, 200, {})
            return
        try:
            params = parse_watch_body(request.body)
        except BadWatchRequest as bad:
            send_json(respond, 400, {"error": str(bad)})
            return
        stream = await respond.start_stream(200, EVENT_STREAM_HEADERS)
        await self._follow(stream, params.since, params.last_position)

    def _start_index(self, next_position: int, since: float) -> int:
        if not self._entries:
            return 0
        index = max(next_position - self._entries[0].position, 0)
        if index < len(self._entries) and self._entries[index].timestamp <= since:
            key = attrgetter("timestamp")
            index = bisect.bisect_right(self._entries, since, lo=index, key=key)
        return index

    async def _follow(self, stream: Stream, since: float, last_position: int | None) -> None:
        next_position = 0 if last_position is None else last_position + 1
        gone = asyncio.create_task(stream.wait_disconnected())
        try:
            while not gone.done():
                wakeup = self._wakeup
                index = self._start_index(next_position, since)
                if index < len(self._entries):
                    batch = self._entries[index : index + _BATCH]
                    stream.write(b"".join(entry.payload for entry in batch))
                    next_position = batch[-1].position + 1
                    await stream.drain()
                    continue
                waiter = asyncio.create_task(wakeup.wait())
                done, _ = await asyncio.wait(
                    {waiter, gone}, timeout=self.keep_alive, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if not done:
                    stream.write(KEEP_ALIVE)
                    await stream.drain()
        except ConnectionError:
            logger.debug("watcher went away")
        finally:
            gone.cancel()


async def serve_simulator(
    host: str,
    port: int,
    *,
    seed: int,
    rate: float,
    bearer: str,
    time_scale: float = 0.1,
    keep_alive: float = 5.0,
    history: int = 200_000,
) -> WatchAllSimulator:
    """Start a simulator on host:port; the caller closes it with `aclose()`."""
    simulator = WatchAllSimulator(
        bearer=bearer,
        seed=seed,
        rate=rate,
        time_scale=time_scale,
        keep_alive=keep_alive,
        history=history,
    )
    await simulator.start(host, port)
    return simulator
