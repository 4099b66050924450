"""One HTTP exchange: the parsed `Request` and the `Responder` that answers it.

A complete response or a streamed (chunked) one; `AsyncClosing` for the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import NamedTuple, Self

__all__ = ["AsyncClosing", "Handler", "Request", "Responder", "Stream"]


class Request(NamedTuple):
    """One parsed request; header names are lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer: str


Handler = Callable[[Request, "Responder"], Awaitable[None]]


def _head(status: int, headers: Sequence[tuple[str, str]], extra: Sequence[str]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Stream:
    """A streamed response body; chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, chunked: bool
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._chunked = chunked
        self._finished = False

    def write(self, data: bytes) -> None:
        """Queue `data` for sending (without waiting); a no-op once the connection is closing."""
        if not data or self.is_closing():
            return
        if self._chunked:
            self._writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the send buffer is low; raise `ConnectionError` when the peer has gone."""
        if self.is_closing():
            raise ConnectionResetError("the client has disconnected")
        await self._writer.drain()

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
        if self._chunked:
            self._writer.write(b"0\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()
        self._writer.close()


class Responder:
    """Answers one request: either `send()` a complete response or `start_stream()`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        head: bool,
        http10: bool,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._head = head
        self._http10 = http10
        self._headers = headers
        self.stream: Stream | None = None
        self.started = False
        self.aborted = False

    def send(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Send a complete response; Content-Length is set here."""
        self._begin()
        head = _head(status, [*headers, *self._headers], [f"Content-Length: {len(body)}"])
        self._writer.write(head if self._head else head + body)

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]]) -> Stream:
        """Send the status and headers of a streamed response; write the body to the `Stream`."""
        self._begin()
        chunked = not self._http10
        extra = ["Connection: close"]
        if chunked:
            extra.append("Transfer-Encoding: chunked")
        self._writer.write(_head(status, [*headers, *self._headers], extra))
        await self._writer.drain()
        self.stream = Stream(self._reader, self._writer, chunked=chunked)
        return self.stream

    def abort(self) -> None:
        """Drop the connection without answering (for fault injection)."""
        self.started = self.aborted = True
        self._writer.transport.abort()

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
