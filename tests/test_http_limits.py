"""What a client may cost the HTTP server: connections, bytes and time, over real loopback sockets.

Attackers connect from 127.0.0.2 (all of 127/8 is loopback on Linux), well-behaved clients from
127.0.0.1, as a pod and a kubelet would from two addresses.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config import settings_for
from exporter.serving.http_exchange import Request, Responder
from exporter.serving.http_request import Limits
from exporter.serving.http_server import HTTPServer

BIG = 24 * 1024 * 1024  # larger than what the kernel buffers for one socket (4 MiB on Linux)


async def page(request: Request, respond: Responder) -> None:
    """`/big` is a page larger than any socket buffer; anything else is small."""
    body = b"x" * BIG if request.path == "/big" else b"ok\n"
    respond.send(200, [("Content-Type", "text/plain")], body)


@pytest.fixture
async def start() -> AsyncIterator[Callable[[Limits], asyncio.Future[HTTPServer]]]:
    servers: list[HTTPServer] = []

    async def go(limits: Limits) -> HTTPServer:
        server = HTTPServer(page, limits=limits)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield go  # type: ignore[misc]
    for server in servers:
        await server.aclose()


def port_of(server: HTTPServer) -> int:
    return server._listeners[0].getsockname()[1]


async def connect(server: HTTPServer, source: str = "127.0.0.2") -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port_of(server)))
    return sock


async def until(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def closed_by_server(sock: socket.socket, within: float = 15.0) -> bytes:
    """Everything the server sent until it closed the connection (bounded)."""
    loop = asyncio.get_running_loop()
    received = b""
    async with asyncio.timeout(within):
        while chunk := await loop.sock_recv(sock, 65536):
            received += chunk
    return received


async def get(server: HTTPServer, path: str = "/", source: str = "127.0.0.1") -> int:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
        return (await client.get(f"http://127.0.0.1:{port_of(server)}{path}")).status_code


async def test_when_full_the_longest_waiting_connection_makes_room(start) -> None:
    # Slow clients fill every place: a probe, which asks at once, still gets one.
    server = await start(Limits(max_connections=3, max_connections_per_client=100))
    held = []
    for count in range(1, 4):  # one after the other: the first waits longest
        held.append(await connect(server))
        await until(lambda n=count: server.connections == n, "the connection")
    assert await get(server, "/", source="127.0.0.1") == 200
    assert await closed_by_server(held[0]) == b""  # the one that waited longest
    assert server.refused["replaced_by_newer"] == 1
    for sock in held:
        sock.close()


async def test_when_full_of_busy_connections_new_ones_are_refused_at_once(start) -> None:
    server = await start(
        Limits(max_connections=2, max_connections_per_client=100, write_timeout=60.0)
    )
    loop = asyncio.get_running_loop()
    busy = []
    for _ in range(2):  # each is being sent a page it does not read: none waits for a request
        sock = await connect(server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await loop.sock_sendall(sock, b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        busy.append(sock)
    await until(lambda: not server._waiting and server.connections == 2, "two busy connections")
    extra = await connect(server)
    assert (await closed_by_server(extra)).startswith(b"HTTP/1.1 503 ")
    assert server.refused["max_connections"] == 1
    for sock in [*busy, extra]:
        sock.close()


async def test_one_address_cannot_take_every_connection(start) -> None:
    server = await start(Limits(max_connections=100, max_connections_per_client=2))
    held = [await connect(server, "127.0.0.2") for _ in range(2)]
    await until(lambda: server.connections == 2, "two connections")
    extra = await connect(server, "127.0.0.2")
    assert (await closed_by_server(extra)).startswith(b"HTTP/1.1 503 ")
    assert server.refused["max_connections_per_client"] == 1
    assert await get(server, source="127.0.0.1") == 200  # another address is served
    for sock in [*held, extra]:
        sock.close()


async def test_refused_connections_are_counted_on_metrics_by_reason() -> None:
    # The real exporter: a scrape flood from one address shows in its own exposition.
    settings = settings_for(
        [
            "--api-url", "http://127.0.0.1:9", "--bearer-token", "unused",
            "--listen", "127.0.0.1:0", "--web.max-connections-per-client", "2",
        ],
        env={},
    )  # fmt: skip
    exporter = Exporter(settings)
    await exporter.start_server()
    server = exporter.server
    assert server is not None
    held, extra = [], []
    try:
        held = [await connect(server) for _ in range(2)]
        await until(lambda: server.connections == 2, "two connections")
        for _ in range(3):
            extra.append(await connect(server))
            assert (await closed_by_server(extra[-1])).startswith(b"HTTP/1.1 503 ")
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            page = (await client.get(f"http://127.0.0.1:{port_of(server)}/metrics")).text
    finally:
        for sock in [*held, *extra]:
            sock.close()
        await server.aclose()
    counted = {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(page)
        if family.name == "requence_exporter_http_connections_refused"
        for s in family.samples
    }
    assert counted == {
        "max_connections": 0,
        "max_connections_per_client": 3,
        "replaced_by_newer": 0,
        "out_of_file_descriptors": 0,
    }


async def test_a_silent_connection_is_closed_after_the_idle_timeout(start) -> None:
    server = await start(Limits(idle_timeout=0.2))
    sock = await connect(server)
    assert await closed_by_server(sock) == b""
    await until(lambda: server.connections == 0, "the connection to be forgotten")
    sock.close()


async def test_a_client_that_never_reads_is_dropped_after_the_write_timeout(start) -> None:
    server = await start(Limits(write_timeout=0.5))
    sock = await connect(server)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await asyncio.get_running_loop().sock_sendall(sock, b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    await until(lambda: server.connections == 1, "the request to be taken")
    # Without a write timeout the page would wait in memory for as long as the client lives.
    await until(lambda: server.connections == 0, "the non-reading client to be dropped")
    sock.close()


async def test_unsent_pages_beyond_the_budget_get_503(start) -> None:
    server = await start(Limits(max_unsent_bytes=1024 * 1024, write_timeout=60.0))
    loop = asyncio.get_running_loop()
    readers = []
    for _ in range(2):
        sock = await connect(server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await loop.sock_sendall(sock, b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        readers.append(sock)
        await asyncio.sleep(0.3)
    # The first page is sent whatever its size; the second finds the budget spent.
    first = await loop.sock_recv(readers[0], 64)
    assert first.startswith(b"HTTP/1.1 200 ")
    second = await closed_or_first(readers[1])
    assert second.startswith(b"HTTP/1.1 503 ")
    assert await get(server, "/") == 200  # small answers are always sent
    for sock in readers:
        sock.close()


async def closed_or_first(sock: socket.socket) -> bytes:
    async with asyncio.timeout(10):
        return await asyncio.get_running_loop().sock_recv(sock, 64)


async def test_an_oversized_chunked_body_gets_413(start) -> None:
    server = await start(Limits(max_body_bytes=1000))
    sock = await connect(server)
    chunk = b"%x\r\n%b\r\n" % (600, b"a" * 600)
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    await asyncio.get_running_loop().sock_sendall(sock, head + chunk + chunk + b"0\r\n\r\n")
    assert (await closed_by_server(sock)).startswith(b"HTTP/1.1 413 ")
    sock.close()


async def test_a_head_past_the_header_cap_gets_431(start) -> None:
    server = await start(Limits(max_header_bytes=4096))
    sock = await connect(server)
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"a" * 5000 + b"\r\n\r\n"
    await asyncio.get_running_loop().sock_sendall(sock, head)
    assert (await closed_by_server(sock)).startswith(b"HTTP/1.1 431 ")
    sock.close()


# Run in a process of its own: it lowers the open-file limit and uses up the descriptors.
_EMFILE = textwrap.dedent(
    """
    import asyncio, logging, os, resource, socket, sys
    from exporter.serving.http_exchange import Request, Responder
    from exporter.serving.http_request import Limits
    from exporter.serving.http_server import HTTPServer

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)

    async def ok(request: Request, respond: Responder) -> None:
        respond.send(200, [], b"ok")

    async def main() -> None:
        server = HTTPServer(ok, limits=Limits(max_connections_per_client=1000))
        host, port = await server.start("127.0.0.1", 0)
        print("cap", server.max_connections, flush=True)
        loop = asyncio.get_running_loop()
        clients = [socket.socket() for _ in range(50)]
        hog = []
        try:
            while True:
                hog.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        for s in clients:
            s.setblocking(False)
            try:
                await loop.sock_connect(s, (host, port))
            except OSError:
                pass
        await asyncio.sleep(1.0)
        print("refused", server.refused["out_of_file_descriptors"] > 0, flush=True)
        for fd in hog:
            os.close(fd)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n")
        reply = await asyncio.wait_for(reader.read(), 10)
        print("served", reply.startswith(b"HTTP/1.1 200 "), flush=True)
        writer.close()
        for s in clients:
            s.close()
        await server.aclose()

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_out_of_descriptors_backs_off_and_logs_once() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EMFILE], capture_output=True, text=True, timeout=60, check=False
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "cap 192" in out  # the open-file limit less what is kept for everything else
    assert "refused True" in out
    assert "served True" in out
    assert "Traceback" not in out
    assert out.count("cannot accept connections") == 1, out
