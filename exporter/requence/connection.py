"""The watch-all request on a socket of its own, its response parsed by llhttp (`httptools`).

httpx reads a response through anyio and httpcore: each socket read is several awaits, an async
generator step and a timeout scope, which at the trickle production sends (one update per read)
costs more than the update itself. Here each read reaches an asyncio `Protocol` in one call
from the event loop, llhttp parses the head and the chunked framing in C, and the read's body
goes to the stream's intake at once: no task wakes up unless the intake has something to await
(a compressed read inflated in pieces, a large read parsed a step at a time, a sink's
backpressure), and then reading pauses until it is done.

What httpx gave the stream is kept: TLS verified with httpx's trust settings (its CA bundle,
`SSL_CERT_FILE` and `SSL_CERT_DIR`), a 10 s connect timeout, and failures raised as the httpx
errors they are (`ConnectError`, `ConnectTimeout`, `ReadError`, `RemoteProtocolError`), so the
stream names them as before. The response head is bounded (`MAX_HEAD_BYTES`; llhttp has no
bound of its own). A proxy is httpx's job: `WatchStream` reads through httpx when one is set.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final, Protocol

import httptools
import httpx

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_HEAD_BYTES",
    "QUIET_READ",
    "Consumer",
    "Response",
    "open_response",
]

CONNECT_TIMEOUT: Final = 10.0
MAX_HEAD_BYTES: Final = 64 * 1024
# A read shorter than this left the socket empty (asyncio reads up to 256 KiB at a time).
QUIET_READ: Final = 64 * 1024
# The only response headers the stream reads; the rest are parsed and dropped.
_KEPT: Final = frozenset({b"content-type", b"content-encoding"})


class Consumer(Protocol):
    """Where a response's body goes (the stream's `Intake`): `take` each read; when it says
    so, await `settle`."""

    def take(self, raw: bytes) -> bool: ...

    async def settle(self) -> None: ...


class Response(asyncio.Protocol):
    """One response, read as it arrives: the head, then the body handed to an intake.

    After a read that left the socket empty (under `QUIET_READ` bytes) of a quiet stream,
    reading pauses for `gather` seconds: its updates gather in the socket and arrive several a
    read, one wake-up for them all instead of one each, `gather` later. A stream is quiet when
    what arrived since the last such read, at its rate, would fill less than `QUIET_READ` in
    `gather`: a busy stream read faster than it is sent (catching up from a slower server)
    leaves the socket empty too, and a pause would hold its sender.
    """

    def __init__(self, gather: float = 0.0) -> None:
        self._gather = gather
        self._gathering: asyncio.TimerHandle | None = None
        self._arrived = 0  # bytes read since the last read that emptied the socket
        self._emptied = 0.0  # the event loop's time of that read, or of connecting
        self.parser = httptools.HttpResponseParser(self)
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.transport: asyncio.Transport | None = None
        self._head_bytes = 0
        self._head_in = False
        self._informational = False  # a 1xx head, which a final one follows
        self._body: list[bytes] = []
        self._intake: Consumer | None = None
        self._pending = False  # the intake asked for `settle`
        self._ended = False  # the server ended the response or closed the connection
        self._failure: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._emptied = asyncio.get_running_loop().time()  # the stream's rate counts from here

    def data_received(self, data: bytes) -> None:
        if self._ended or self._failure is not None:
            return
        if not self._head_in:
            self._head_bytes += len(data)
        self._arrived += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fail(httpx.RemoteProtocolError("malformed HTTP response"))
            return
        if not self._head_in and self._head_bytes > MAX_HEAD_BYTES:
            self._fail(httpx.RemoteProtocolError("response head over the bound"))
            return
        body = self._body
        if body and self._intake is not None:
            self._body = []
            try:
                if self._intake.take(body[0] if len(body) == 1 else b"".join(body)):
                    self._pending = True
                    self._pause()
                    self._wake()
                elif self._gather and len(data) < QUIET_READ:
                    self._emptied_socket()
            except BaseException as exc:
                self._fail(exc)

    def _emptied_socket(self) -> None:
        """A read left the socket empty: pause reading for `gather` if the stream is quiet."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        quiet = self._arrived * self._gather < QUIET_READ * (now - self._emptied)
        self._arrived = 0
        self._emptied = now
        if quiet:
            self._pause()
            self._gathering = loop.call_later(self._gather, self._gathered)

    def _gathered(self) -> None:
        self._gathering = None
        if not self._pending:
            self._resume()

    def eof_received(self) -> bool:
        return False  # close the transport: the response ends with the connection

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._ended = True
            self._wake()
        else:
            failure = httpx.ReadError("the connection failed")
            failure.__cause__ = exc
            self._fail(failure)

    # llhttp's callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _KEPT:
            key = name.decode("ascii")
            text = value.decode("latin-1")
            # Repeated headers are joined, as httpx's `Headers.get` does.
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        code = self.parser.get_status_code()
        if 100 <= code < 200 and code != 101:  # skipped, as httpx skips them
            self._informational = True
            self.headers.clear()
            return
        self.status_code = code
        self._head_in = True
        self._pause()  # until an intake is there to take the body
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._ended = True
        self._wake()

    # The reader's side

    async def head(self) -> None:
        """Wait for the status line and headers; raise what ended the connection before."""
        while not self._head_in:
            self._raise_failure()
            if self._ended:
                raise httpx.RemoteProtocolError("the server closed the connection early")
            await self._wait()

    async def pump(self, intake: Consumer) -> None:
        """Hand the body to `intake` until the response ends; raise what ended it otherwise."""
        self._intake = intake
        early, self._body = self._body, []
        if early and intake.take(b"".join(early)):
            await intake.settle()
        while True:
            if self._pending:
                self._pending = False
                await intake.settle()
            self._raise_failure()
            if self._ended:
                return
            if self._gathering is None:
                self._resume()
            await self._wait()

    def close(self) -> None:
        """Drop the connection, whatever state the response is in."""
        if self._gathering is not None:
            self._gathering.cancel()
        if self.transport is not None:
            self.transport.abort()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None and not self._ended:
            self._failure = exc
        self._wake()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


async def open_response(
    url: httpx.URL,
    head: list[tuple[str, str]],
    body: bytes,
    tls: ssl.SSLContext | None,
    gather: float = 0.0,
) -> Response:
    """POST `body` to `url` with the `head` headers; the response once its head is in, for
    the caller to `close`. `gather`: see `Response`."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            transport, response = await loop.create_connection(
                lambda: Response(gather),
                host,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
            )
    except TimeoutError:
        raise httpx.ConnectTimeout("connecting timed out") from None
    except OSError as exc:
        raise httpx.ConnectError("could not connect") from exc
    try:
        lines = [f"POST {url.raw_path.decode('ascii')} HTTP/1.1", f"Host: {url.netloc.decode()}"]
        lines += [f"{name}: {value}" for name, value in head]
        lines += [f"Content-Length: {len(body)}", "", ""]
        transport.write("\r\n".join(lines).encode("latin-1") + body)
        await response.head()
    except BaseException:
        transport.abort()
        raise
    return response
