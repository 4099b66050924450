"""A small asyncio HTTP/1.1 server: h11 parses every request, this module holds the connections.

Shared by the exporter's endpoints and the watch-all simulator. What a client may cost is capped
by `Limits`: connections in total (kept below the process's open-file limit) and per client
address, request head and body bytes, the time a request may take to arrive and to begin, the
time a client may take to read each response, and the response bytes not yet taken by clients.
A connection over a cap is refused at once; when accept() fails for want of file descriptors
the server backs off and says so at most once a minute. Connections stay alive between complete
responses and end after a streamed one; `aclose()` ends every connection, streams included.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
from collections import Counter
from collections.abc import Sequence
from typing import Final

import h11

from exporter.core.logs import RateLimitedWarning
from exporter.core.refusals import REFUSAL_REASONS
from exporter.serving.http_exchange import AsyncClosing, Handler, Responder, drain
from exporter.serving.http_request import READ_SIZE, BadRequest, Limits, answer_bad, read_request

__all__ = ["HTTPServer", "Limits", "descriptor_cap"]

logger = logging.getLogger(__name__)

_FD_RESERVE: Final = 64  # descriptors kept for the stream, the state file, logs and spans
_OUT_OF_DESCRIPTORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_LISTENER_GONE: Final = frozenset({errno.EBADF, errno.EINVAL, errno.ENOTSOCK})
_FIRST_PAUSE: Final = 0.05  # seconds accept() rests after running out of descriptors, doubling
_LONGEST_PAUSE: Final = 1.0
_REFUSED: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


class _Connection:
    """One accepted connection: its socket, its client's address and, once set up, its writer."""

    __slots__ = ("client", "sock", "writer")

    def __init__(self, sock: socket.socket, client: str) -> None:
        self.sock = sock
        self.client = client
        self.writer: asyncio.StreamWriter | None = None


def descriptor_cap(wanted: int) -> int:
    """`wanted`, lowered to leave `_FD_RESERVE` of the process's open-file limit free."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # not a Unix
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _FD_RESERVE))


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
        limits: Limits | None = None,
    ) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self._headers = tuple(headers)
        self.limits = limits or Limits()
        self.max_connections = self.limits.max_connections
        self._listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._per_client: Counter[str] = Counter()
        # Connections waiting for a request, longest first; and those dropped, not yet gone.
        self._waiting: dict[asyncio.Task[None], None] = {}
        self._evicted: set[asyncio.Task[None]] = set()
        # Connections refused, by reason (`REFUSAL_REASONS`): read by the metrics at scrape time.
        self.refused: Counter[str] = Counter()
        self._warn = RateLimitedWarning(logger)
        self._closing = False

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS."""
        return self._ssl is not None

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._connections)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port (0 picks a free port); return the bound address."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        addresses = list(dict.fromkeys((family, address) for family, *_, address in infos))
        if port == 0:
            addresses = addresses[:1]  # each address would get a port of its own
        try:
            for family, address in addresses:
                sock = socket.socket(family, socket.SOCK_STREAM)
                self._listeners.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(128)
                sock.setblocking(False)
        except OSError:
            for sock in self._listeners:
                sock.close()
            self._listeners.clear()
            raise
        self.max_connections = descriptor_cap(self.limits.max_connections)
        if self.max_connections < self.limits.max_connections:
            logger.info(
                "serving at most %d connections at once: the open-file limit leaves no more",
                self.max_connections,
            )
        self._accepting = [asyncio.create_task(self._accept(s)) for s in self._listeners]
        bound = self._listeners[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def aclose(self) -> None:
        """Stop listening and end every open connection, streams included."""
        self._closing = True
        for accepting in self._accepting:
            accepting.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        for sock in self._listeners:
            sock.close()
        self._listeners.clear()
        tasks = list(self._connections)
        for task, connection in list(self._connections.items()):
            if connection.writer is not None:
                connection.writer.transport.abort()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- accepting -----------------------------------------------------------------------

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        pause = _FIRST_PAUSE
        while not self._closing:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _LISTENER_GONE:
                    logger.error("stopped accepting connections: %s", os.strerror(exc.errno or 0))
                    return
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    continue  # the client gave up before it was accepted
                self.refused["out_of_file_descriptors"] += 1
                self._warn(
                    "accept",
                    "cannot accept connections: %s (%d open); pausing accept() for up to %.1fs",
                    os.strerror(exc.errno or 0),
                    len(self._connections),
                    _LONGEST_PAUSE,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)
                continue
            pause = _FIRST_PAUSE
            self._admit(sock, address)

    def _admit(self, sock: socket.socket, address: object) -> None:
        client = str(address[0]) if isinstance(address, tuple) else str(address)
        open_now = len(self._connections) - len(self._evicted)
        if open_now >= self.max_connections and self._waiting:
            # Full: the connection that has waited longest for a request makes room, so slow
            # clients cannot keep out a probe or a scrape, which asks at once.
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            self._evicted.add(oldest)
            writer = self._connections[oldest].writer
            if writer is not None:
                writer.transport.abort()
            oldest.cancel()
            self.refused["replaced_by_newer"] += 1
            open_now -= 1
        if open_now >= self.max_connections:
            reason = "max_connections"
        elif self._per_client[client] >= self.limits.max_connections_per_client:
            reason = "max_connections_per_client"
        else:
            sock.setblocking(False)
            # A response's head and body are separate writes: without this, Nagle's algorithm
            # holds the body back until the client's delayed acknowledgement (40 ms).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._per_client[client] += 1
            connection = _Connection(sock, client)
            peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else client
            task = asyncio.create_task(self._serve(connection, peer))
            self._connections[task] = connection
            self._waiting[task] = None
            task.add_done_callback(self._forget)
            return
        self.refused[reason] += 1
        self._warn(reason, "refused a connection from %s: %s", client, REFUSAL_REASONS[reason])
        if self._ssl is None:
            # Best effort. What the client sent already is read first: closing a socket with
            # unread bytes resets the connection, and the client would not see the answer.
            with contextlib.suppress(OSError):
                sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
            with contextlib.suppress(OSError):
                sock.send(_REFUSED, socket.MSG_DONTWAIT)
        sock.close()

    def _forget(self, task: asyncio.Task[None]) -> None:
        connection = self._connections.pop(task)
        self._waiting.pop(task, None)
        self._evicted.discard(task)
        if connection.writer is None:
            connection.sock.close()  # stopped before its transport took the socket over
        self._per_client[connection.client] -= 1
        if self._per_client[connection.client] <= 0:
            del self._per_client[connection.client]
        if not task.cancelled() and task.exception() is not None:
            logger.error("connection failed", exc_info=task.exception())

    def _room(self, _size: int) -> bool:
        """Whether the response bytes clients have not taken yet leave room for another page.

        One page is always sent when nothing else waits, however large it is.
        """
        unsent = sum(
            c.writer.transport.get_write_buffer_size()
            for c in self._connections.values()
            if c.writer is not None
        )
        return unsent < self.limits.max_unsent_bytes

    # -- one connection ------------------------------------------------------------------

    async def _serve(self, connection: _Connection, peer: str) -> None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            async with asyncio.timeout(limits.idle_timeout if self._ssl else None):
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    connection.sock,
                    ssl=self._ssl,
                    ssl_handshake_timeout=limits.idle_timeout if self._ssl else None,
                )
        except (OSError, TimeoutError):
            return  # a failed TLS handshake or a client already gone
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        connection.writer = writer
        try:
            await self._exchanges(reader, writer, peer)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            writer.transport.abort()
        finally:
            writer.close()

    async def _exchanges(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        limits = self.limits
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        me = asyncio.current_task()
        assert me is not None
        while not self._closing:
            self._waiting.pop(me, None)
            self._waiting[me] = None  # waiting for a request from now on: last in line
            try:
                request = await read_request(connection, reader, writer, limits, peer)
            except BadRequest as bad:
                logger.debug("bad request from %s: %s", peer, bad)
                await answer_bad(connection, writer, bad, self._headers, limits.write_timeout)
                return
            if request is None:
                return
            self._waiting.pop(me, None)
            respond = Responder(
                reader,
                writer,
                connection,
                head=request.method == "HEAD",
                headers=self._headers,
                write_timeout=limits.write_timeout,
                room=self._room,
            )
            failed = False
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
                failed = True
            if respond.aborted:
                return
            if respond.stream is not None:
                await respond.stream.close()
                return
            if not respond.started:
                respond.send(500, [("Content-Type", "text/plain")], b"no response\n")
            await drain(writer, limits.write_timeout)
            if failed or connection.our_state is not h11.DONE:
                return
            if connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()
