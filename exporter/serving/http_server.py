"""A minimal asyncio HTTP/1.1 server: complete and streamed (chunked) responses, prompt shutdown.

Shared by the exporter's own endpoints and the watch-all simulator. It keeps connections alive
between complete responses, ends a connection after a streamed one, and tracks every connection
so `aclose()` also ends long-lived event streams.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from exporter.serving.http_exchange import AsyncClosing, Handler, Request, Responder, _head

__all__ = ["HTTPServer"]

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES: Final = 64 * 1024
_TOKEN: Final = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSIONS: Final = (b"HTTP/1.1", b"HTTP/1.0")


class _BadRequest(Exception):
    """The request cannot be parsed; answer with `status` and close."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class HTTPServer(AsyncClosing):
    """Serves `handler` over HTTP/1.1 (optionally TLS); `aclose()` ends every connection.

    `headers` are added to every response (security headers from a web config file).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        headers: Sequence[tuple[str, str]] = (),
        header_timeout: float = 10.0,
        max_body: int = 1024 * 1024,
    ) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self._headers = tuple(headers)
        self._header_timeout = header_timeout
        self._max_body = max_body
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._closing = False

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS."""
        return self._ssl is not None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port (0 picks a free port); return the bound address."""
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            ssl=self._ssl,
            ssl_handshake_timeout=self._header_timeout if self._ssl else None,
            limit=MAX_HEADER_BYTES,
        )
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def aclose(self) -> None:
        """Stop listening and end every open connection, streams included."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task, writer in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback that starts a task of our own: our tasks can be cancelled by
        # `aclose()` without asyncio reporting the cancellation as an unhandled error.
        if self._closing:
            writer.transport.abort()
            return
        task = asyncio.create_task(self._serve_connection(reader, writer))
        self._connections[task] = writer
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("connection failed", exc_info=task.exception())

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._connection_loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            writer.transport.abort()
        finally:
            writer.close()

    async def _connection_loop(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        while not self._closing:
            try:
                async with asyncio.timeout(self._header_timeout):
                    request, keep_alive, http10 = await self._read_request(reader, writer, peer)
            except _BadRequest as bad:
                logger.debug("bad request from %s: %s", peer, bad)
                body = f"{bad}\n".encode()
                writer.write(
                    _head(
                        bad.status,
                        [
                            ("Content-Type", "text/plain; charset=utf-8"),
                            ("Connection", "close"),
                            *self._headers,
                        ],
                        [f"Content-Length: {len(body)}"],
                    )
                    + body
                )
                await writer.drain()
                return
            if request is None:
                return
            respond = Responder(
                reader,
                writer,
                head=request.method == "HEAD",
                http10=http10,
                headers=self._headers,
            )
            try:
                await self._handler(request, respond)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                logger.exception("handler failed for %s %s", request.method, request.path)
                if respond.started:
                    writer.transport.abort()
                    return
                respond.send(500, [("Content-Type", "text/plain")], b"internal server error\n")
                keep_alive = False
            if respond.aborted:
                return
            if respond.stream is not None:
                await respond.stream.close()
                return
            if not respond.started:
                respond.send(500, [("Content-Type", "text/plain")], b"no response\n")
            await writer.drain()
            if not keep_alive:
                return

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> tuple[Request | None, bool, bool]:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as eof:
            if eof.partial.strip():
                raise _BadRequest(400, "incomplete request head") from None
            return None, False, False
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, "request head too large") from None
        lines = raw[:-4].split(b"\r\n")
        while lines and not lines[0]:
            lines.pop(0)  # tolerate stray blank lines before a request (RFC 9112 2.2)
        if not lines:
            raise _BadRequest(400, "empty request")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] not in _VERSIONS or not _TOKEN.match(parts[0]):
            raise _BadRequest(400, "malformed request line")
        method = parts[0].decode("ascii")
        http10 = parts[2] == b"HTTP/1.0"
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.match(name):
                raise _BadRequest(400, "malformed header line")
            key = name.decode("ascii").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        body = await self._read_body(reader, writer, headers)
        try:
            target = urlsplit(parts[1].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise _BadRequest(400, "malformed request target") from None
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (not http10 or "keep-alive" in connection)
        request = Request(method, unquote(target.path) or "/", query, headers, body, peer)
        return request, keep_alive, http10

    async def _read_body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> bytes:
        encoding = headers.get("transfer-encoding", "").lower()
        length_text = headers.get("content-length")
        if encoding:
            if encoding != "chunked" or length_text is not None:
                raise _BadRequest(400, "unsupported transfer encoding")
            self._continue(writer, headers)
            return await self._read_chunked(reader)
        if length_text is None:
            return b""
        if not length_text.isdigit():
            raise _BadRequest(400, "malformed Content-Length")
        length = int(length_text)
        if length > self._max_body:
            raise _BadRequest(413, "request body too large")
        self._continue(writer, headers)
        return await reader.readexactly(length)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size_line = (await reader.readuntil(b"\r\n"))[:-2].split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size") from None
            if size < 0 or len(body) + size > self._max_body:
                raise _BadRequest(413, "request body too large")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers are read and ignored
                return bytes(body)
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise _BadRequest(400, "malformed chunk")

    @staticmethod
    def _continue(writer: asyncio.StreamWriter, headers: dict[str, str]) -> None:
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
