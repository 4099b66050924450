"""One HTTP exchange: the parsed `Request` and the `Responder` that answers it.

A complete response or a streamed one (chunked, or close-delimited for HTTP/1.0 clients); h11
frames both, and every wait for the client to take what was written is bounded by the server's
write timeout. `AsyncClosing` for the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Final, NamedTuple, Self

import h11

__all__ = ["AsyncClosing", "Handler", "Request", "Responder", "Stream", "drain"]

# A response at most this large is always sent; a larger one only while the server's budget of
# unsent bytes has room for it (else 503), so clients that never read cannot pile up pages.
ALWAYS_SENT: Final = 64 * 1024
_BUSY: Final = (("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1"))


class Request(NamedTuple):
    """One parsed request; header names are lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer: str


Handler = Callable[[Request, "Responder"], Awaitable[None]]


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase of `status` (`Unknown` for codes without one)."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Unknown"


async def drain(writer: asyncio.StreamWriter, within: float) -> None:
    """Wait until the client has taken what was written; drop the connection after `within`.

    Raise `ConnectionError` when the client is gone or too slow, so callers stop writing.
    """
    try:
        async with asyncio.timeout(within):
            await writer.drain()
    except TimeoutError:
        writer.transport.abort()
        raise ConnectionAbortedError("the client did not read the response in time") from None


class Stream:
    """A streamed response body; chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: h11.Connection,
        *,
        write_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._h11 = connection
        self._write_timeout = write_timeout
        self._finished = False

    def write(self, data: bytes) -> None:
        """Queue `data` for sending (without waiting); a no-op once the connection is closing."""
        if not data or self.is_closing():
            return
        for piece in self._h11.send_with_data_passthrough(h11.Data(data=data)) or ():
            self._writer.write(piece)

    async def drain(self) -> None:
        """Wait until the send buffer is low; raise `ConnectionError` when the peer has gone
        or has not taken the data within the write timeout."""
        if self.is_closing():
            raise ConnectionResetError("the client has disconnected")
        await drain(self._writer, self._write_timeout)

    def is_closing(self) -> bool:
        """Whether the connection is closed or closing (by either side)."""
        return self._finished or self._writer.transport.is_closing()

    async def wait_disconnected(self) -> None:
        """Return once the client has closed its side or the connection has dropped."""
        with contextlib.suppress(ConnectionError):
            while await self._reader.read(65536):
                pass  # a client sends nothing more after its request; discard it if it does

    def abort(self) -> None:
        """Drop the connection at once, mid-body (for fault injection)."""
        self._finished = True
        self._writer.transport.abort()

    async def close(self) -> None:
        """End the body cleanly and close the connection."""
        if self.is_closing():
            return
        self._finished = True
        self._writer.write(self._h11.send(h11.EndOfMessage()) or b"")
        with contextlib.suppress(ConnectionError):
            await drain(self._writer, self._write_timeout)
        self._writer.close()


class Responder:
    """Answers one request: either `send()` a complete response or `start_stream()`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: h11.Connection,
        *,
        head: bool,
        headers: Sequence[tuple[str, str]] = (),
        write_timeout: float = 10.0,
        room: Callable[[int], bool] = lambda _size: True,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._h11 = connection
        self._head = head
        self._headers = headers
        self._write_timeout = write_timeout
        self._room = room
        self.stream: Stream | None = None
        self.started = False
        self.aborted = False

    def may_send(self, size: int) -> bool:
        """Whether a body of `size` bytes would go out now: a large one waits for the server's
        budget of unsent bytes (so a page need not be built only to be refused)."""
        return self._head or size <= ALWAYS_SENT or self._room(size)

    def send(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Send a complete response; Content-Length is set here.

        A large body while the server holds too many unsent bytes becomes a 503 instead.
        """
        self._begin()
        if not self.may_send(len(body)):
            status, headers, body = 503, _BUSY, b"busy: too many responses not yet read\n"
        response = h11.Response(
            status_code=status,
            headers=[*headers, *self._headers, ("Content-Length", str(len(body)))],
            reason=reason_phrase(status),
        )
        head = self._h11.send(response) or b""
        if self._head:
            self._writer.write(head)
        elif len(body) <= ALWAYS_SENT:
            self._writer.write(head + self._h11.send(h11.Data(data=body)))
        else:
            self._writer.write(head)
            # Passed through as it is: a page of metrics is not copied to be framed.
            for piece in self._h11.send_with_data_passthrough(h11.Data(data=body)) or ():
                self._writer.write(piece)
        self._h11.send(h11.EndOfMessage())

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]]) -> Stream:
        """Send the status and headers of a streamed response; write the body to the `Stream`."""
        self._begin()
        response = h11.Response(
            status_code=status,
            headers=[*headers, *self._headers, ("Connection", "close")],
            reason=reason_phrase(status),
        )
        self._writer.write(self._h11.send(response) or b"")
        await drain(self._writer, self._write_timeout)
        self.stream = Stream(
            self._reader, self._writer, self._h11, write_timeout=self._write_timeout
        )
        return self.stream

    def abort(self) -> None:
        """Drop the connection without answering (for fault injection)."""
        self.started = self.aborted = True
        self._writer.transport.abort()

    async def write_raw(self, data: bytes) -> None:
        """Write bytes that need not be HTTP at all, then wait until they are taken (for fault
        injection: a hostile server's answer); the connection is dropped afterwards."""
        self.started = self.aborted = True
        self._writer.write(data)
        await drain(self._writer, self._write_timeout)

    def _begin(self) -> None:
        if self.started:
            raise RuntimeError("a response was already started for this request")
        self.started = True


class AsyncClosing:
    """`async with` for anything closed by `aclose()`."""

    async def aclose(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
