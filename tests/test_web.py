"""The asyncio HTTP server, exercised over real loopback connections with httpx and raw sockets."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from exporter.serving.http_exchange import Request, Responder, Stream
from exporter.serving.http_request import Limits
from exporter.serving.http_server import HTTPServer
from tests.tools import require_tool

Handler = Callable[[Request, Responder], Awaitable[None]]
ServerFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[ServerFactory]:
    """Start servers on ephemeral ports; close them all at the end."""
    servers: list[HTTPServer] = []

    async def start(handler: Handler, **options: object) -> str:
        limits = options.pop("limits", None)
        server = HTTPServer(handler, limits=limits, **options)  # type: ignore[arg-type]
        servers.append(server)
        host, port = await server.start("127.0.0.1", 0)
        return f"http://{host}:{port}"

    yield start
    for server in servers:
        await server.aclose()


async def echo(request: Request, respond: Responder) -> None:
    """Answer with what was received, so tests see the parsed request."""
    lines = [
        f"method={request.method}",
        f"path={request.path}",
        f"query={sorted(request.query.items())}",
        f"x-test={request.headers.get('x-test')}",
        f"peer={request.peer}",
        f"body={request.body.decode()}",
    ]
    respond.send(200, [("Content-Type", "text/plain"), ("X-Seen", "1")], "\n".join(lines).encode())


def parse_echo(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


async def raw_exchange(url: str, payload: bytes, *, bound: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (bounded)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(bound):
            return await reader.read(-1)
    finally:
        writer.close()


async def test_parses_method_path_query_headers_and_body(serve: ServerFactory) -> None:
    url = await serve(echo)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/a%20b/c?x=1&y=&z=%2F", content=b"hello", headers={"X-Test": "yes"}
        )
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["x-seen"] == "1"
    seen = parse_echo(response.text)
    assert seen["method"] == "POST"
    assert seen["path"] == "/a b/c"
    assert seen["query"] == str([("x", "1"), ("y", ""), ("z", "/")])
    assert seen["x-test"] == "yes"
    assert seen["body"] == "hello"
    assert seen["peer"].startswith("127.0.0.1:")


async def test_keeps_the_connection_alive_between_complete_responses(
    serve: ServerFactory,
) -> None:
    url = await serve(echo)
    async with httpx.AsyncClient() as client:
        first = parse_echo((await client.get(url)).text)
        second = parse_echo((await client.get(url)).text)
    assert first["peer"] == second["peer"]


async def test_connection_close_is_honoured(serve: ServerFactory) -> None:
    url = await serve(echo)
    reply = await raw_exchange(url, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"body=")


async def test_chunked_request_body_is_read(serve: ServerFactory) -> None:
    url = await serve(echo)
    payload = (
        b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    )
    reply = await raw_exchange(url, payload)
    assert reply.endswith(b"body=abcde")


async def test_expect_continue_gets_an_interim_response(serve: ServerFactory) -> None:
    url = await serve(echo)
    payload = (
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
        b"Connection: close\r\n\r\nok"
    )
    reply = await raw_exchange(url, payload)
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"body=ok")


@pytest.mark.parametrize(
    "payload",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ten\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        # What a hand-written parser let through: int() takes a superscript digit (byte
        # 0xb2 read as Latin-1 is "²"), and a chunk size in Python's 0x notation.
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xb2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    ],
)
async def test_malformed_requests_get_400(serve: ServerFactory, payload: bytes) -> None:
    url = await serve(echo)
    reply = await raw_exchange(url, payload)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", b"505 HTTP Version Not Supported"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", b"501 "),
    ],
)
async def test_unsupported_versions_and_encodings(
    serve: ServerFactory, payload: bytes, status: bytes
) -> None:
    url = await serve(echo)
    reply = await raw_exchange(url, payload)
    assert reply.startswith(b"HTTP/1.1 " + status)


async def test_oversized_body_gets_413(serve: ServerFactory) -> None:
    url = await serve(echo, limits=Limits(max_body_bytes=100))
    async with httpx.AsyncClient() as client:
        too_big = await client.post(url, content=b"x" * 101)
        fits = await client.post(url, content=b"x" * 100)
    assert too_big.status_code == 413
    assert fits.status_code == 200


async def test_oversized_head_gets_431(serve: ServerFactory) -> None:
    url = await serve(echo)
    reply = await raw_exchange(url, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")


async def test_header_timeout_closes_a_silent_connection(serve: ServerFactory) -> None:
    url = await serve(echo, limits=Limits(header_timeout=0.2))
    reply = await raw_exchange(url, b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert reply == b""


async def test_handler_failure_answers_500_and_logs(
    serve: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_request: Request, _respond: Responder) -> None:
        raise ValueError("boom")

    url = await serve(broken)
    with caplog.at_level(logging.ERROR, logger="exporter.serving.http_server"):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{url}/x")
    assert response.status_code == 500
    assert any("handler failed" in record.message for record in caplog.records)
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


async def test_handler_that_answers_nothing_gets_500(serve: ServerFactory) -> None:
    async def silent(_request: Request, _respond: Responder) -> None:
        return

    url = await serve(silent)
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 500


async def test_head_sends_headers_only(serve: ServerFactory) -> None:
    async def page(_request: Request, respond: Responder) -> None:
        respond.send(200, [("Content-Type", "text/plain")], b"twelve bytes")

    url = await serve(page)
    async with httpx.AsyncClient() as client:
        head = await client.head(url)
        get = await client.get(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "12"
    assert get.content == b"twelve bytes"


async def test_streamed_response_is_chunked_and_ends_cleanly(serve: ServerFactory) -> None:
    async def stream(_request: Request, respond: Responder) -> None:
        out = await respond.start_stream(200, [("Content-Type", "text/plain")])
        for index in range(5):
            out.write(f"part{index};".encode())
            await out.drain()
        out.write(b"")  # an empty write must not end the chunked body early
        out.write(b"end")
        await out.close()

    url = await serve(stream)
    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body == b"part0;part1;part2;part3;part4;end"


async def test_streamed_response_to_http10_is_close_delimited(serve: ServerFactory) -> None:
    async def stream(_request: Request, respond: Responder) -> None:
        out = await respond.start_stream(200, [("Content-Type", "text/plain")])
        out.write(b"abc")
        await out.close()

    url = await serve(stream)
    reply = await raw_exchange(url, b"GET / HTTP/1.0\r\n\r\n")
    assert b"transfer-encoding" not in reply.lower()
    assert reply.endswith(b"\r\n\r\nabc")


async def test_abort_drops_the_stream_mid_body(serve: ServerFactory) -> None:
    async def stream(_request: Request, respond: Responder) -> None:
        out = await respond.start_stream(200, [("Content-Type", "text/plain")])
        out.write(b"half of an ev")
        await out.drain()
        out.abort()
        assert out.is_closing()

    url = await serve(stream)
    received = bytearray()

    async def read_all(response: httpx.Response) -> None:
        async for chunk in response.aiter_bytes():
            received.extend(chunk)

    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            await read_all(response)
    assert received == b"half of an ev"


async def test_handler_failure_after_start_drops_the_connection(serve: ServerFactory) -> None:
    async def stream(_request: Request, respond: Responder) -> None:
        out = await respond.start_stream(200, [])
        out.write(b"x")
        await out.drain()
        raise RuntimeError("mid-stream failure")

    url = await serve(stream)
    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()


async def test_second_response_is_refused(serve: ServerFactory) -> None:
    errors: list[Exception] = []

    async def twice(_request: Request, respond: Responder) -> None:
        respond.send(204, [], b"")
        try:
            respond.send(200, [], b"again")
        except RuntimeError as error:
            errors.append(error)

    url = await serve(twice)
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 204
    assert len(errors) == 1


async def test_stream_notices_the_client_leaving(serve: ServerFactory) -> None:
    left = asyncio.Event()

    async def stream(_request: Request, respond: Responder) -> None:
        out = await respond.start_stream(200, [])
        out.write(b"hello")
        await out.drain()
        await out.wait_disconnected()
        left.set()

    url = await serve(stream)
    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        async for _chunk in response.aiter_bytes():
            break
    async with asyncio.timeout(5):
        await left.wait()


async def test_aclose_ends_open_streams_and_stops_listening() -> None:
    opened: list[Stream] = []

    async def forever(_request: Request, respond: Responder) -> None:
        out = await respond.start_stream(200, [("Content-Type", "text/event-stream")])
        opened.append(out)
        out.write(b": hi\n\n")
        await asyncio.Event().wait()

    server = HTTPServer(forever)
    host, port = await server.start("127.0.0.1", 0)
    url = f"http://{host}:{port}"
    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b": hi\n\n"
        async with asyncio.timeout(5):
            await server.aclose()
            with pytest.raises(httpx.RemoteProtocolError):
                async for _chunk in chunks:
                    pass
    assert opened[0].is_closing()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


async def test_serves_tls(serve: ServerFactory, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    process = await asyncio.create_subprocess_exec(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await process.wait() == 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    url = (await serve(echo, ssl_context=context)).replace("http://", "https://")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert))) as client:
        response = await client.get(f"{url}/secure")
    assert parse_echo(response.text)["path"] == "/secure"


async def test_responder_abort_drops_without_an_answer(serve: ServerFactory) -> None:
    async def unanswered(_request: Request, respond: Responder) -> None:
        respond.abort()

    url = await serve(unanswered)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)
