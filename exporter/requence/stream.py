"""The watch-all connection: request, SSE bytes, resume after the last position, backoff.

One connection attempt at a time inside an outer loop that never ends on transient faults:
gateways (502/503/504), refused connections, timeouts and drops are retried forever with capped
exponential backoff and jitter. A wrong token or URL before the first successful connection is
fatal with a message naming what to fix; after it, it is logged and retried.

`--read-timeout` measures progress, not bytes: a connection whose response head (status line
and headers) is not in within it, or that then completes no event and no comment within it, is
dropped and resumed, however many bytes trickle in. A compressed body is inflated in bounded
pieces (`exporter.requence.inflate`), with the event loop free between them, and a read that
completes a large event is parsed a step at a time (`drain`), the same way.

What a failure is logged and shown as never quotes the HTTP stack's messages, which may hold
the request's headers or a server's echo of them: the bearer token (`core.transport_failure`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import httpx
from httpx_sse import aconnect_sse

from exporter.core.errors import NotFound, StreamError, Unauthorized, Unreachable
from exporter.core.headers import transport_failure
from exporter.core.status import StreamStatus
from exporter.requence.inflate import ACCEPT_ENCODING, UnsupportedEncoding, inflater_for
from exporter.requence.sse import STEP, RawEvent, SSEDecoder
from exporter.requence.token import Credentials

__all__ = ["Backoff", "WatchStream", "drain"]

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[RawEvent], float], None]


async def drain(decoder: SSEDecoder, deliver: Callable[[list[RawEvent]], None]) -> None:
    """Parse what waits in the decoder's backlog a step (`STEP` bytes) at a time, handing each
    step's events to `deliver`, with a turn of the event loop between steps: probes, scrapes
    and checkpoints go on while a 16 MiB event of short lines is parsed."""
    while decoder.backlog:
        await asyncio.sleep(0)
        events = decoder.resume(STEP)
        if events:
            deliver(events)


class Backoff:
    """Capped exponential delays with jitter: half fixed, half random, so replicas spread."""

    def __init__(
        self, *, initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        ceiling = min(self.maximum, self.initial * 2.0**self.failures)
        self.failures = min(self.failures + 1, 32)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """A connection worked: start again from the initial delay."""
        self.failures = 0


class _NotSSE(StreamError):
    """A 200 answer that is not an event stream (a proxy's or captive portal's page)."""


class _HTTPStatus(StreamError):
    """Any other unexpected HTTP status."""


class _HeadTimeout(StreamError):
    """The response's status line and headers did not arrive within the read timeout."""


# Content types named in a message; any other is not quoted, since a hostile server could echo
# a request header (the token) into it.
_NAMED_TYPES: Final = frozenset(
    {"text/html", "text/plain", "application/json", "application/xml", "text/xml"}
)


class _Watchdog:
    """Ends a connection that completes no event or comment within `period` of the last one.

    The reader sets `last` (the loop's time) after a read that made progress; the timer fires
    once per period, re-arms itself at `last + period`, and only when that moment has passed
    moves the connection's deadline to now, which cancels the read as `asyncio.timeout` does.
    """

    __slots__ = ("_deadline", "_handle", "_loop", "_period", "last", "paused")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deadline: asyncio.Timeout, period: float
    ) -> None:
        self._loop = loop
        self._deadline = deadline
        self._period = period
        self.last = loop.time()
        self.paused = False
        deadline.reschedule(None)  # the head is in: from here on, the watchdog decides
        self._handle = loop.call_at(self.last + period, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if self.paused:
            self._handle = self._loop.call_at(now + self._period, self._check)
        elif (due := self.last + self._period) > now:
            self._handle = self._loop.call_at(due, self._check)
        else:
            self._deadline.reschedule(now)

    def stop(self) -> None:
        """The connection ended: no more checks."""
        self._handle.cancel()


class WatchStream:
    """Follows `POST {api}/task/watch-all` forever, handing each read's events to `handler`."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        credentials: Credentials,
        since: str,
        status: StreamStatus,
        handler: Handler,
        read_timeout: float = 60.0,
        max_event_bytes: int = 16 * 1024 * 1024,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backpressure: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._url = f"{credentials.api_url}/task/watch-all"
        self.status = status
        status.since = since
        self._handler = handler
        self._read_timeout = read_timeout
        self._max_event_bytes = max_event_bytes
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._sleep = sleep
        # Asked after each read: something to await while a sink's queue is full (the traces').
        self._backpressure = backpressure
        self._ever_connected = False
        self.alive_at = time.monotonic()  # liveness: the loop touched this recently

    async def run(self) -> None:
        """Stream until cancelled; raise Unauthorized/NotFound only before the first success."""
        status = self.status
        while True:
            self.alive_at = time.monotonic()
            try:
                await self._connect_once()
                reason, error = "dropped", "the server ended the stream"
            except Unauthorized as exc:
                if not self._ever_connected:
                    raise
                reason, error = "unauthorized", str(exc)
            except NotFound as exc:
                if not self._ever_connected:
                    raise
                reason, error = "http_error", str(exc)
            except Unreachable as exc:
                reason, error = "unreachable", str(exc)
            except _NotSSE as exc:
                reason, error = "not_sse", str(exc)
            except _HTTPStatus as exc:
                reason, error = "http_error", str(exc)
            except _HeadTimeout as exc:
                reason, error = "timeout", str(exc)
            except httpx.TimeoutException as exc:
                reason = "timeout" if isinstance(exc, httpx.ReadTimeout) else "unreachable"
                error = f"{type(exc).__name__}: no data within the timeout"
            except TimeoutError:
                reason = "timeout"
                # Named as httpx names a silent connection: to an operator it is the same fault.
                error = "ReadTimeout: no complete event or comment within the read timeout"
            except zlib.error as exc:
                reason, error = "dropped", f"corrupt compressed body: {exc}"
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                reason, error = "dropped", transport_failure(exc)
            except (httpx.ConnectError, httpx.NetworkError, OSError) as exc:
                reason, error = "unreachable", transport_failure(exc)
            except httpx.HTTPError as exc:
                reason, error = "http_error", transport_failure(exc)
            status.reconnected(reason, error)
            delay = self._backoff.next_delay()
            log_at = logging.WARNING if self._backoff.failures <= 3 else logging.INFO
            log.log(
                log_at,
                "watch-all stream %s; reconnecting in %.1fs",
                reason,
                delay,
                extra={
                    "fields": {
                        "reason": reason,
                        "error": error,
                        "retry_in_seconds": round(delay, 3),
                        "position": status.position,
                    }
                },
            )
            await self._sleep(delay)

    async def _connect_once(self) -> None:
        status = self.status
        body: dict[str, object] = {"since": status.since}
        if status.position is not None:
            body["lastPosition"] = status.position
        timeout = httpx.Timeout(10.0, read=self._read_timeout)
        headers = {
            "Authorization": f"Bearer {self._credentials.bearer_token}",
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        read_timeout = self._read_timeout
        head_in = False
        try:
            # httpx's timeouts bound each read, not the whole head: one byte a second would
            # hold a connection forever. The head must be in within the read timeout too.
            async with asyncio.timeout(read_timeout) as deadline:
                async with aconnect_sse(
                    self._client, "POST", self._url, json=body, headers=headers, timeout=timeout
                ) as source:
                    head_in = True
                    await self._follow(source.response, deadline)
        except TimeoutError:
            if head_in:
                raise
            raise _HeadTimeout(
                f"no complete response head within the read timeout ({read_timeout:g}s)"
            ) from None
        status.connected = False

    async def _follow(self, response: httpx.Response, deadline: asyncio.Timeout) -> None:
        """Read the event stream of a response whose head is in."""
        status = self.status
        loop = asyncio.get_running_loop()
        read_timeout = self._read_timeout
        self._check(response)
        try:
            inflater = inflater_for(response.headers.get("content-encoding"))
        except UnsupportedEncoding as exc:
            raise _HTTPStatus(f"HTTP 200 with {exc}") from None
        status.connected = True
        status.connections += 1
        self._ever_connected = True
        log.info(
            "watch-all stream connected (since %s, after position %s)",
            status.since,
            status.position,
        )
        decoder = SSEDecoder(self._max_event_bytes)
        handler = self._handler
        clock = self._clock
        backpressure = self._backpressure
        received = False
        progress = decoder.progress
        # One timer per read timeout rather than a deadline moved on every read (a timer
        # handle allocated and one cancelled per read, the largest cost of a one-event read).
        watchdog = _Watchdog(loop, deadline, read_timeout)
        try:
            # Raw bytes: httpx would inflate a whole compressed read at once.
            async for raw in response.aiter_raw():
                self.alive_at = time.monotonic()
                for chunk in (raw,) if inflater is None else inflater.pieces(raw):
                    events = decoder.feed(chunk, STEP)
                    if events:
                        handler(events, clock())
                        if not received:
                            received = True
                            self._backoff.reset()
                    if decoder.backlog:  # a large read: parsed a step at a time
                        await drain(decoder, lambda found: handler(found, clock()))
                    if inflater is not None:
                        await asyncio.sleep(0)  # probes and scrapes between pieces
                if backpressure is not None and (wait := backpressure()) is not None:
                    watchdog.paused = True  # our own wait: not the server's silence
                    await wait
                    watchdog.paused = False
                    watchdog.last = loop.time()
                if decoder.progress != progress:
                    progress = decoder.progress
                    watchdog.last = loop.time()
        finally:
            watchdog.stop()

    def _check(self, response: httpx.Response) -> None:
        code = response.status_code
        if code in (401, 403):
            raise Unauthorized(
                f"the Requence API refused the bearer token (HTTP {code}): check the access "
                "token (--access-token, REQUENCE_ACCESS_TOKEN) or --bearer-token"
            )
        if code == 404:
            raise NotFound(
                f"no watch-all endpoint at {self._url} (HTTP 404): check the API URL in the "
                "access token or --api-url"
            )
        if code in (502, 503, 504):
            raise Unreachable(f"HTTP {code} from a gateway in front of Requence")
        if code != 200:
            raise _HTTPStatus(f"unexpected HTTP {code} from {self._url}")
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            media = content_type.partition(";")[0].strip().lower()
            named = media if media in _NAMED_TYPES else "another content type"
            raise _NotSSE(
                f"HTTP 200 but {named if content_type else 'no content type'}, not an event "
                "stream: a proxy in the way?"
            )
