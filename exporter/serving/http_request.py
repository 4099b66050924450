"""Reading one request with h11, within the server's `Limits`, and refusing a bad one.

h11 does the parsing (request line, headers, Content-Length, chunked bodies, `Expect:
100-continue`); this module adds what h11 leaves to its user: a head size that is checked even
when the head arrives whole, a body size, and the time a request may take to begin and arrive.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

from exporter.serving.http_exchange import Request, drain, reason_phrase

__all__ = ["READ_SIZE", "BadRequest", "Limits", "answer_bad", "read_request"]

logger = logging.getLogger(__name__)

READ_SIZE: Final = 64 * 1024
_MAX_QUERY_FIELDS: Final = 64


@dataclass(frozen=True, slots=True)
class Limits:
    """What the clients of one server may cost it."""

    max_connections: int = 512
    max_connections_per_client: int = 32
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024
    header_timeout: float = 10.0  # a request (head and body) arrives whole within this once begun
    idle_timeout: float = 10.0  # and begins within this after connecting or the last response
    write_timeout: float = 10.0  # each response write is taken by the client within this
    max_unsent_bytes: int = 64 * 1024 * 1024  # responses not yet taken, all connections together


class BadRequest(Exception):
    """The request cannot be served; answer with `status` and close."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


async def read_request(
    connection: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    limits: Limits,
    peer: str,
) -> Request | None:
    """The next request, read whole; None when the client closed or idled between requests.

    Raise `BadRequest` for anything that cannot be served.
    """
    loop = asyncio.get_running_loop()
    head: h11.Request | None = None
    body = bytearray()
    # Bytes received towards this request's head: h11 checks only an incomplete head's size.
    received = len(connection.trailing_data[0])
    begun = received > 0
    try:
        async with asyncio.timeout(limits.idle_timeout) as deadline:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(READ_SIZE)
                    if data and not begun:
                        begun = True
                        deadline.reschedule(loop.time() + limits.header_timeout)
                    if head is None:
                        received += len(data)
                    connection.receive_data(data)
                elif isinstance(event, h11.Request):
                    begun = True
                    head = event
                    if received - len(connection.trailing_data[0]) > limits.max_header_bytes:
                        raise BadRequest(431, "request head too large")
                    _check_head(event, limits)
                    if connection.they_are_waiting_for_100_continue:
                        go_on = h11.InformationalResponse(
                            status_code=100, headers=[], reason=b"Continue"
                        )
                        writer.write(connection.send(go_on) or b"")
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > limits.max_body_bytes:
                        raise BadRequest(413, "request body too large")
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    return _request(head, bytes(body), peer)
                else:  # ConnectionClosed (or PAUSED, which a server never sees here)
                    return None
    except h11.RemoteProtocolError as exc:
        raise BadRequest(exc.error_status_hint, str(exc)) from None
    except ValueError:  # h11 converts a Content-Length of 4,301+ digits with int()
        raise BadRequest(400, "malformed request") from None
    except TimeoutError:
        if begun:
            logger.debug("request from %s timed out", peer)
        return None


def _check_head(head: h11.Request, limits: Limits) -> None:
    if head.http_version not in (b"1.1", b"1.0"):
        raise BadRequest(505, "only HTTP/1.1 and HTTP/1.0 are served")
    for name, value in head.headers:
        if name != b"content-length":
            continue
        if len(value) > 20 or int(value) > limits.max_body_bytes:
            raise BadRequest(413, "request body too large")


def _request(head: h11.Request, body: bytes, peer: str) -> Request:
    """The handler's view of a request that h11 has read."""
    try:
        target = urlsplit(head.target.decode("ascii"))
        query = dict(
            parse_qsl(target.query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS)
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "malformed request target") from None
    headers: dict[str, str] = {}
    for raw_name, raw_value in head.headers:
        name = raw_name.decode("ascii")
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    method = head.method.decode("ascii")
    return Request(method, unquote(target.path) or "/", query, headers, body, peer)


async def answer_bad(
    connection: h11.Connection,
    writer: asyncio.StreamWriter,
    bad: BadRequest,
    headers: tuple[tuple[str, str], ...],
    write_timeout: float,
) -> None:
    """Answer a request that cannot be served with its status and a one-line reason."""
    body = f"{bad}\n".encode()
    response = h11.Response(
        status_code=bad.status,
        headers=[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *headers,
        ],
        reason=reason_phrase(bad.status),
    )
    try:
        writer.write(connection.send(response) or b"")
        writer.write(connection.send(h11.Data(data=body)) or b"")
    except h11.LocalProtocolError:
        return  # a response had begun already: nothing sensible to add
    await drain(writer, write_timeout)
