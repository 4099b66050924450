"""Hostile request bytes against the real HTTP server on loopback.

Whatever a client sends, the server answers with a well-formed status line or closes, never
reaches an unhandled exception (nothing is logged at ERROR), and still answers a good request
afterwards.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.serving.http_exchange import Request, Responder
from exporter.serving.http_request import Limits
from exporter.serving.http_server import HTTPServer
from tests.e2e.servers import LoopThread

GOOD = b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _echo(request: Request, respond: Responder) -> None:
    body = b"%d %b %d" % (len(request.query), request.path.encode(), len(request.body))
    respond.send(200, [("Content-Type", "text/plain")], body)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, _Errors]]:
    errors = _Errors()
    watched = [logging.getLogger(name) for name in ("exporter", "asyncio")]
    for logger in watched:
        logger.addHandler(errors)
    with LoopThread() as loop:
        limits = Limits(max_header_bytes=2048, max_body_bytes=512, idle_timeout=5.0)
        http = loop.call(lambda: _started(limits))
        yield http._listeners[0].getsockname()[1], errors
        loop.run(http.aclose())
    for logger in watched:
        logger.removeHandler(errors)


async def _started(limits: Limits) -> HTTPServer:
    http = HTTPServer(_echo, limits=limits)
    await http.start("127.0.0.1", 0)
    return http


def exchange(port: int, payload: bytes) -> bytes:
    """Send `payload`, end the sending side, read until the server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server refused mid-send: fine, checked by the good request after
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"G\x00T", b"", b"get"]
TARGETS = [b"/", b"/ok", b"/%", b"/%ff", b"/?a=1&a=2", b"/?" + b"x&" * 100, b"*", b"http://[", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/9.9", b""]
HEADERS = [
    b"Host: a",
    b"Host:",
    b"Content-Length: 5",
    b"Content-Length: -1",
    b"Content-Length: \xb2",
    b"Content-Length: \xb9\xb2",
    b"Content-Length: 1,2",
    b"Content-Length: 99999999999",
    b"Content-Length: " + b"9" * 4400,
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: chunked, chunked",
    b"Expect: 100-continue",
    b"Connection: close",
    b"Connection: keep-alive",
    b"X: \xff\xfe",
    b" folded",
    b"\tfolded",
    b"no colon",
    b": x",
    b"X-Pad: " + b"a" * 3000,
    b"X\x00: y",
    b"",
]
BODIES = [
    b"", b"hello", b"0x2\r\nab\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n",
    b"fffffffffffffffffffff\r\n", b"1;ext=\xff\r\nx\r\n0\r\n\r\n", b"400\r\n" + b"a" * 1024,
    GOOD, b"0\r\nTrailer: x\r\n\r\n",
]  # fmt: skip

structured = st.builds(
    lambda method, target, version, headers, body: (
        method + b" " + target + b" " + version + b"\r\n" + b"\r\n".join(headers)
        + b"\r\n\r\n" + body
    ),
    st.sampled_from(METHODS),
    st.sampled_from(TARGETS),
    st.sampled_from(VERSIONS),
    st.lists(st.sampled_from(HEADERS), min_size=1, max_size=5),
    st.one_of(st.sampled_from(BODIES), st.binary(max_size=200)),
)  # fmt: skip
requests = st.one_of(structured, structured, structured, st.binary(max_size=600))


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=requests)
def test_no_request_bytes_reach_an_unhandled_exception(
    server: tuple[int, _Errors], payload: bytes
) -> None:
    port, errors = server
    errors.records.clear()
    reply = exchange(port, payload)
    assert reply == b"" or reply[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "), reply[:80]
    # By the time a later request is answered, the first connection's end has been handled.
    assert exchange(port, GOOD).startswith(b"HTTP/1.1 200 OK\r\n")
    assert errors.records == [], [r.getMessage() for r in errors.records]
