"""A reader design measured beside the exporter's, not shipped: the watch-all stream read with an
asyncio `Protocol` and llhttp (the `httptools` parser, C) instead of httpx's async stack.

Each socket read arrives in `data_received`: one Python call from the event loop's selector
callback, with no awaits, no async generators and no per-read timeout scope; llhttp parses the
response head and the chunked framing; the body pieces of one read are joined and fed to the
exporter's own `SSEDecoder` once, and its events go to the same `Pipeline.feed` as
`WatchStream`'s. What a shipped reader would add (TLS, proxies, the status and content-type
checks, bounded inflation, resume and backoff) sits outside the per-read path: see
docs/performance/README.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson

from bench.stream_runs import bench_exporter
from bench.trickle import Marks
from exporter.app import Exporter
from exporter.requence.sse import RawEvent, SSEDecoder

__all__ = ["prototype_bulk", "prototype_trickle"]

Handler = Callable[[Sequence[RawEvent], float], None]


class _StreamProtocol(asyncio.Protocol):
    """The response parsed by llhttp, each read's body fed to the SSE decoder once."""

    def __init__(self, decoder: SSEDecoder, handler: Handler) -> None:
        self.decoder = decoder
        self.handler = handler
        self.parser = httptools.HttpResponseParser(self)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() != 200:
            self._end(RuntimeError(f"HTTP {self.parser.get_status_code()}"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._end(None)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        body = self._body
        if body:
            self._body = []
            events = self.decoder.feed(body[0] if len(body) == 1 else b"".join(body))
            if events:
                self.handler(events, time.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        if not self.closed.done():
            if exc is None:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


async def _connect(exporter: Exporter, since: str, handler: Handler) -> _StreamProtocol:
    settings = exporter.settings
    url = urlsplit(f"{settings.credentials.api_url}/task/watch-all")
    decoder = SSEDecoder(settings.max_event_bytes)
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: _StreamProtocol(decoder, handler), url.hostname or "127.0.0.1", url.port or 80
    )
    body = orjson.dumps({"since": since})
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {len(body)}\r\n"
        f"Authorization: Bearer {settings.credentials.bearer_token}\r\n"
        "Content-Type: application/json\r\nAccept: text/event-stream\r\n\r\n"
    )
    assert protocol.transport is not None
    protocol.transport.write(head.encode("latin-1") + body)
    return protocol


async def prototype_bulk(base_url: str, last_position: int, since: str) -> dict[str, Any]:
    """Seconds to read the whole pre-rendered stream through the exporter's pipeline."""
    exporter = bench_exporter(base_url, since)
    status, feed = exporter.status, exporter.pipeline.feed
    done = asyncio.Event()

    def handler(events: Sequence[RawEvent], arrival: float) -> None:
        feed(events, arrival)
        if status.position == last_position:
            done.set()

    start = time.perf_counter()
    protocol = await _connect(exporter, since, handler)
    try:
        await asyncio.wait_for(done.wait(), 300.0)
        seconds = time.perf_counter() - start
    finally:
        protocol._end(None)
    return {"seconds": seconds, "updates": sum(exporter.metrics.updates_by_type().values())}


async def prototype_trickle(
    base_url: str, since: str, warmup: float, seconds: float
) -> dict[str, Any]:
    """CPU seconds, updates and reads over one window of the simulator's steady rate."""
    exporter = bench_exporter(base_url, since)
    marks = Marks(exporter.pipeline.feed)
    protocol = await _connect(exporter, since, marks.handler)
    marks.arm(warmup, seconds)
    try:
        await asyncio.wait_for(marks.done.wait(), warmup + seconds + 60.0)
    finally:
        protocol._end(None)
    return marks.window()
