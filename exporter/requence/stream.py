"""The watch-all connection: request, SSE bytes, resume after the last position, backoff.

One connection attempt at a time inside an outer loop that never ends on transient faults:
gateways (502/503/504), refused connections, timeouts and drops are retried forever with capped
exponential backoff and jitter. A wrong token or URL before the first successful connection is
fatal with a message naming what to fix; after it, it is logged and retried.

Two readers, one intake (`exporter.requence.intake`): llhttp on a socket of its own
(`exporter.requence.connection`), the default, or httpx, when a proxy is set or
`--stream-reader httpx` asks for it. Either way the response head must be in within
`--read-timeout`, and then each read goes to the intake, which hands events on and watches for
progress.

What a failure is logged and shown as never quotes the HTTP stack's messages, which may hold
the request's headers or a server's echo of them: the bearer token (`core.transport_failure`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.request
import zlib
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Final

import httpx
import orjson
from httpx_sse import aconnect_sse

from exporter import __version__
from exporter.core.errors import NotFound, StreamError, Unauthorized, Unreachable
from exporter.core.headers import transport_failure
from exporter.core.status import StreamStatus
from exporter.requence.connection import CONNECT_TIMEOUT, open_response
from exporter.requence.inflate import ACCEPT_ENCODING, UnsupportedEncoding, inflater_for
from exporter.requence.intake import Handler, Intake, Watchdog
from exporter.requence.token import Credentials

__all__ = ["Backoff", "WatchStream"]

log = logging.getLogger(__name__)


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


USER_AGENT: Final = f"requence-exporter/{__version__}"
# What httpx-sse's `aconnect_sse` adds to the request, for the llhttp reader.
_SSE_HEADERS: Final = {
    "Accept": "text/event-stream",
    "Cache-Control": "no-store",
    "Content-Type": "application/json",
}

# Content types named in a message; any other is not quoted, since a hostile server could echo
# a request header (the token) into it.
_NAMED_TYPES: Final = frozenset(
    {"text/html", "text/plain", "application/json", "application/xml", "text/xml"}
)


async def _pump_httpx(response: httpx.Response, intake: Intake) -> None:
    """The httpx reader: raw bytes (httpx would inflate a whole compressed read at once). It
    reads at once: what it hands on is an HTTP chunk, not a socket read, so it cannot tell
    when the socket is empty to gather."""
    async for raw in response.aiter_raw():
        if intake.take(raw):
            await intake.settle()


def _reader_for(choice: str, url: httpx.URL) -> str:
    """The reader a stream uses: the one asked for, else llhttp unless a proxy variable applies
    (llhttp speaks to the API directly; httpx honours the proxy variables)."""
    if choice in ("llhttp", "httpx"):
        return choice
    proxies = urllib.request.getproxies_environment()
    return "httpx" if proxies.get(url.scheme) or proxies.get("all") else "llhttp"


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
        reader: str = "auto",
        gather: float = 0.0,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._url = f"{credentials.api_url}/task/watch-all"
        self._parsed_url = url = httpx.URL(self._url)
        # "llhttp" or "httpx": see `_reader_for`; auto picks llhttp unless a proxy is set.
        self.reader = _reader_for(reader, url)
        self._gather = gather  # seconds a quiet stream's updates gather between reads
        self._tls = (
            httpx.create_ssl_context(trust_env=True)
            if url.scheme == "https" and self.reader == "llhttp"
            else None
        )
        self.status = status
        status.since = since
        status.reader = self.reader  # /status names it: the httpx reader costs several times more
        self._handler = handler
        self._read_timeout = read_timeout
        self._max_event_bytes = max_event_bytes
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._sleep = sleep
        # Asked after each read: something to await while a sink's queue is full (the traces').
        self._backpressure = backpressure
        self._ever_connected = False
        self._alive_at = time.monotonic()
        self._intake: Intake | None = None

    @property
    def alive_at(self) -> float:
        """Liveness: when the loop last tried to connect or a read last arrived (monotonic)."""
        intake = self._intake
        return self._alive_at if intake is None else max(self._alive_at, intake.alive_at)

    async def run(self) -> None:
        """Stream until cancelled; raise Unauthorized/NotFound only before the first success."""
        status = self.status
        while True:
            self._alive_at = time.monotonic()
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
        headers = {
            "Authorization": f"Bearer {self._credentials.bearer_token}",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": USER_AGENT,
        }
        read_timeout = self._read_timeout
        head_in = False
        try:
            # httpx's timeouts bound each read, not the whole head: one byte a second would
            # hold a connection forever. The head must be in within the read timeout too.
            async with asyncio.timeout(read_timeout) as deadline:
                if self.reader == "llhttp":
                    headers.update(_SSE_HEADERS)
                    response = await open_response(
                        self._parsed_url,
                        list(headers.items()),
                        orjson.dumps(body),
                        self._tls,
                        self._gather,
                    )
                    try:
                        head_in = True
                        await self._follow(
                            response.status_code, response.headers, deadline, response.pump
                        )
                    finally:
                        response.close()
                else:
                    timeout = httpx.Timeout(CONNECT_TIMEOUT, read=read_timeout)
                    async with aconnect_sse(
                        self._client,
                        "POST",
                        self._url,
                        json=body,
                        headers=headers,
                        timeout=timeout,
                    ) as source:
                        head_in = True
                        raw = source.response
                        await self._follow(
                            raw.status_code,
                            raw.headers,
                            deadline,
                            partial(_pump_httpx, raw),
                        )
        except TimeoutError:
            if head_in:
                raise
            raise _HeadTimeout(
                f"no complete response head within the read timeout ({read_timeout:g}s)"
            ) from None
        status.connected = False

    async def _follow(
        self,
        code: int,
        headers: Mapping[str, str],
        deadline: asyncio.Timeout,
        pump: Callable[[Intake], Awaitable[None]],
    ) -> None:
        """Read the event stream of a response whose head is in."""
        status = self.status
        self._check(code, headers.get("content-type", ""))
        try:
            inflater = inflater_for(headers.get("content-encoding"))
        except UnsupportedEncoding as exc:
            raise _HTTPStatus(f"HTTP 200 with {exc}") from None
        status.connected = True
        status.connections += 1
        self._ever_connected = True
        log.info(
            "watch-all stream connected (since %s, after position %s)",
            status.since,
            status.position,
            extra={"fields": {"reader": self.reader}},
        )
        watchdog = Watchdog(asyncio.get_running_loop(), deadline, self._read_timeout)
        try:
            self._intake = Intake(
                max_event_bytes=self._max_event_bytes,
                inflater=inflater,
                watchdog=watchdog,
                handler=self._handler,
                clock=self._clock,
                backpressure=self._backpressure,
                on_first=self._backoff.reset,
            )
            await pump(self._intake)
        finally:
            watchdog.stop()

    def _check(self, code: int, content_type: str) -> None:
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
        if not content_type.startswith("text/event-stream"):
            media = content_type.partition(";")[0].strip().lower()
            named = media if media in _NAMED_TYPES else "another content type"
            raise _NotSSE(
                f"HTTP 200 but {named if content_type else 'no content type'}, not an event "
                "stream: a proxy in the way?"
            )
