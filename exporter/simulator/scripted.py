"""A watch-all server that follows a script: fixed events, and per-connection fault plans.

A plan is the list of things one connection does, for example
`[[Send(5), DropMidEvent()], [Respond(503)], [Send()]]`: the first connection sends five events
and drops in the middle of the sixth, the second is answered 503 by a "gateway", the third
resumes after the client's `lastPosition`. Connections past the last plan use `fallback`.
Every request is recorded so tests can check what a client sent.

Hostile upstreams are scripted too: `Gzip()` first in a plan compresses the whole body (with
`Content-Encoding: gzip`), `Bomb(size)` sends `size` blank-line bytes that compress about a
thousandfold, and `Dribble(data, interval)` writes bytes one at a time without finishing events.
`RawHead(data, interval)` answers with raw bytes, dribbled or echoing the Authorization header.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, NamedTuple

import orjson

from exporter.requence.decode import parse_timestamp
from exporter.serving.http_exchange import Request, Responder, Stream
from exporter.simulator.hostile import Bomb, Dribble, Gzip, GzipStream, RawHead
from exporter.simulator.protocol import (
    ACK_PREFIX,
    EVENT_STREAM_HEADERS,
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
from exporter.simulator.workload import WorkloadUpdate

__all__ = [
    "Action",
    "Bomb",
    "Close",
    "Comment",
    "Dribble",
    "Drop",
    "DropMidEvent",
    "Duplicate",
    "Event",
    "Gzip",
    "Hang",
    "Raw",
    "RawHead",
    "Respond",
    "ScriptedServer",
    "Send",
    "Stall",
    "events_from_workload",
]


class Event(NamedTuple):
    """A scripted update; raw `data` bytes go on the `data:` line as they are (e.g. broken JSON).

    Without an explicit position an event takes the previous event's position plus one.
    """

    type: str
    data: Mapping[str, Any] | bytes
    position: int | None = None


@dataclass(frozen=True)
class Send:
    """Send the next `count` events (all remaining when None), `per_write` events per write
    (all in one write when None), or the same bytes cut into `chunk_size`-byte writes."""

    count: int | None = None
    per_write: int | None = 1
    chunk_size: int | None = None


@dataclass(frozen=True)
class DropMidEvent:
    """Write the first half of the next event, then drop the connection."""


@dataclass(frozen=True)
class Drop:
    """Drop the connection now (between events)."""


@dataclass(frozen=True)
class Stall:
    """Stay connected and send nothing for `seconds`."""

    seconds: float


@dataclass(frozen=True)
class Comment:
    """Send an SSE comment line, such as a keep-alive."""

    text: str = "keep-alive"


@dataclass(frozen=True)
class Raw:
    """Write these bytes into the event stream as they are."""

    data: bytes


@dataclass(frozen=True)
class Duplicate:
    """Send again the last event at or before the resume point (a duplicate position)."""


@dataclass(frozen=True)
class Close:
    """End the stream cleanly."""


@dataclass(frozen=True)
class Respond:
    """Answer with this status and body instead of a stream (a plan's first action only).

    Without a body a gateway-style HTML page is sent, as proxies do for 502/503/504.
    """

    status: int
    body: bytes | None = None
    content_type: str = "text/html"


@dataclass(frozen=True)
class Hang:
    """Answer nothing at all for `seconds`, then drop (a plan's first action only)."""

    seconds: float


Action = (
    Send
    | DropMidEvent
    | Drop
    | Stall
    | Comment
    | Raw
    | Duplicate
    | Close
    | Respond
    | Hang
    | Gzip
    | Bomb
    | Dribble
    | RawHead
)


def events_from_workload(updates: Iterable[WorkloadUpdate]) -> list[Event]:
    """Scripted events from workload updates (positions 1, 2, ...)."""
    return [Event(update.type, update.data) for update in updates]


def _gateway_page(status: int) -> bytes:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


class _Compiled(NamedTuple):
    position: int
    timestamp: float | None
    payload: bytes


class ScriptedServer(WatchServer):
    """Serves scripted events over the watch-all protocol, one plan per connection."""

    def __init__(
        self,
        events: Iterable[Event],
        plans: Sequence[Sequence[Action]] = (),
        *,
        fallback: Sequence[Action] = (Send(),),
        bearer: str | None = None,
        honor_since: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(bearer, ssl_context)
        self._events = self._compile(events)
        self.plans = [list(plan) for plan in plans]
        self.fallback = list(fallback)
        self.honor_since = honor_since
        self.requests: list[RecordedRequest] = []
        self.acks: list[str] = []
        self.sent: list[list[int]] = []
        self._connected = asyncio.Event()

    @staticmethod
    def _compile(events: Iterable[Event]) -> list[_Compiled]:
        compiled: list[_Compiled] = []
        position = 0
        for event in events:
            position = event.position if event.position is not None else position + 1
            if isinstance(event.data, bytes):
                data, timestamp = event.data, None
            else:
                data = orjson.dumps(event.data)
                timestamp = parse_timestamp(event.data.get("timestamp"))
            compiled.append(_Compiled(position, timestamp, sse_event(event.type, position, data)))
        return compiled

    @property
    def positions(self) -> list[int]:
        """The position of every scripted event, in order."""
        return [event.position for event in self._events]

    @property
    def connections(self) -> int:
        """How many watch-all streams were asked for (each used one plan)."""
        return len(self.sent)

    async def wait_for_connections(self, count: int) -> None:
        """Wait until `count` watch-all streams were asked for (bound it with a timeout)."""
        while self.connections < count:
            await self._connected.wait()
            self._connected.clear()

    async def _handle(self, request: Request, respond: Responder) -> None:
        self.requests.append(record(request))
        if request.method == "POST" and request.path.startswith(ACK_PREFIX):
            self.acks.append(request.path.removeprefix(ACK_PREFIX))
            send_json(respond, 200, {})
            return
        if request.method != "POST" or request.path != WATCH_PATH:
            send_json(respond, 404, {"error": "not found"})
            return
        if not authorized(request, self.bearer):
            send_json(respond, 401, {"error": "unauthorized"})
            return
        try:
            params = parse_watch_body(request.body)
        except BadWatchRequest as bad:
            send_json(respond, 400, {"error": str(bad)})
            return
        index = len(self.sent)
        sent: list[int] = []
        self.sent.append(sent)
        self._connected.set()
        plan = self.plans[index] if index < len(self.plans) else self.fallback
        match plan[0] if plan else None:
            case Respond(status, body, content_type):
                page = body if body is not None else _gateway_page(status)
                respond.send(status, [("Content-Type", content_type)], page)
                return
            case Hang(seconds):
                await asyncio.sleep(seconds)
                respond.abort()
                return
            case RawHead(data, interval, later, pause, hold):
                echoed = request.headers.get("authorization", "").encode("latin-1")
                data = data.replace(b"{authorization}", echoed)
                pieces = [data[i : i + 1] for i in range(len(data))] if interval else [data]
                with contextlib.suppress(ConnectionError):
                    for piece in pieces:
                        await respond.write_raw(piece)
                        await asyncio.sleep(interval)
                    if later:
                        await asyncio.sleep(pause)
                        await respond.write_raw(later)
                    await asyncio.sleep(hold)
                return
        cursor = 0
        if params.last_position is not None:
            while cursor < len(self._events) and (
                self._events[cursor].position <= params.last_position
            ):
                cursor += 1
        gzip = bool(plan) and isinstance(plan[0], Gzip)
        headers = [*EVENT_STREAM_HEADERS, *([("Content-Encoding", "gzip")] if gzip else [])]
        plain = await respond.start_stream(200, headers)
        stream: Stream | GzipStream = GzipStream(plain) if gzip else plain
        try:
            if await self._play(plan, stream, cursor, params.since, sent):
                await stream.wait_disconnected()
        except ConnectionError:
            return

    def _visible(self, index: int, since: float) -> bool:
        timestamp = self._events[index].timestamp
        return not self.honor_since or timestamp is None or timestamp > since

    async def _play(
        self,
        plan: Sequence[Action],
        stream: Stream | GzipStream,
        cursor: int,
        since: float,
        sent: list[int],
    ) -> bool:
        """Run the plan; return whether the connection is still open at its end."""
        events = self._events
        for action in plan:
            match action:
                case Send(count, per_write, chunk_size):
                    end = len(events) if count is None else min(len(events), cursor + count)
                    chosen = [i for i in range(cursor, end) if self._visible(i, since)]
                    cursor = end
                    await self._send(stream, [events[i] for i in chosen], per_write, chunk_size)
                    sent.extend(events[i].position for i in chosen)
                case DropMidEvent():
                    if cursor < len(events):
                        payload = events[cursor].payload
                        stream.write(payload[: len(payload) // 2])
                        await stream.drain()
                    stream.abort()
                    return False
                case Drop():
                    stream.abort()
                    return False
                case Stall(seconds):
                    await asyncio.sleep(seconds)
                case Comment(text):
                    stream.write(f": {text}\n\n".encode())
                    await stream.drain()
                case Raw(data):
                    stream.write(data)
                    await stream.drain()
                case Duplicate():
                    if cursor > 0:
                        stream.write(events[cursor - 1].payload)
                        sent.append(events[cursor - 1].position)
                        await stream.drain()
                case Close():
                    await stream.close()
                    return False
                case Bomb(size, fill):
                    block = fill * (65536 // max(len(fill), 1))
                    for _ in range(0, size, len(block)):
                        stream.write(block)
                        await stream.drain()
                case Dribble(data, interval):
                    for i in range(len(data)):
                        stream.write(data[i : i + 1])
                        await stream.drain()
                        await asyncio.sleep(interval)
                case Gzip():
                    if action is not plan[0]:
                        raise ValueError("Gzip() can only be a plan's first action")
                case Respond() | Hang():
                    raise ValueError(f"{action!r} can only be a plan's first action")
        return True

    @staticmethod
    async def _send(
        stream: Stream | GzipStream,
        chosen: list[_Compiled],
        per_write: int | None,
        chunk_size: int | None,
    ) -> None:
        if chunk_size is not None:
            data = b"".join(event.payload for event in chosen)
            for start in range(0, len(data), chunk_size):
                stream.write(data[start : start + chunk_size])
                await stream.drain()
            return
        step = per_write or max(len(chosen), 1)
        for start in range(0, len(chosen), step):
            stream.write(b"".join(event.payload for event in chosen[start : start + step]))
            await stream.drain()
