"""The two stream readers: llhttp on a connection of its own (the default) and httpx (proxies).

Both send the same request and read the same responses; llhttp verifies TLS with httpx's trust
settings, bounds the response head itself, and gives way to httpx when a proxy applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable

import httpx
import orjson
import pytest

from exporter import __version__
from exporter.simulator.protocol import WATCH_PATH, sse_event
from exporter.simulator.scripted import Action, RawHead, ScriptedServer, Send, Stall
from tests.e2e.rig import Rig, assert_counted_once, workload
from tests.pki import Pki

SCRIPT = workload()
LAST = len(SCRIPT)
BEARER = "reader-bearer"


async def started(plans: list[list[Action]], tls: ssl.SSLContext | None = None) -> ScriptedServer:
    server = ScriptedServer(SCRIPT, plans, bearer=BEARER, ssl_context=tls)
    await server.start("127.0.0.1", 0)
    return server


def server_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    return context


@pytest.mark.usefixtures("each_reader")
async def test_both_readers_send_the_same_request() -> None:
    server = await started([])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        request = rig.watch_requests()[0]
    assert (request.method, request.path) == ("POST", WATCH_PATH)
    assert request.json == {"since": rig.status.since}
    headers = request.headers
    assert headers["authorization"] == f"Bearer {BEARER}"
    assert headers["accept"] == "text/event-stream"
    assert headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/json"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert headers["user-agent"] == f"requence-exporter/{__version__}"


async def test_status_names_the_reader_in_use(each_reader: str) -> None:
    server = await started([])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        assert rig.endpoints.status()["stream_reader"] == each_reader


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces)


@pytest.mark.usefixtures("each_reader")
async def test_an_informational_head_before_the_answer_is_skipped() -> None:
    # 100 Continue; a read later the stream's head and three events in chunks; then the end.
    body = b"".join(
        sse_event(event.type, position, orjson.dumps(event.data))
        for position, event in enumerate(SCRIPT[:3], start=1)
    )
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(body[:10], body[10:])
    )
    head = RawHead(b"HTTP/1.1 100 Continue\r\n\r\n", later=answer)
    server = await started([[head], [Send(), Stall(60)]])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        assert_counted_once(rig)
        # The second request resumed after the first connection's three events.
        assert rig.watch_requests()[1].json["lastPosition"] == 3


async def test_a_response_head_over_the_bound_is_refused_at_once() -> None:
    # A header that never ends: llhttp has no bound of its own; the reader's ends it long
    # before the read timeout would, and the stream resumes.
    endless = RawHead(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 300_000, hold=60.0)
    server = await started([[endless], [Send(), Stall(60)]])
    async with server, Rig(server, reader="llhttp", read_timeout=30.0) as rig:
        await rig.wait_position(LAST, within=10.0)
        assert rig.reconnects() == {**rig.reconnects(), "dropped": 1, "timeout": 0}
        assert "RemoteProtocolError" in (rig.status.last_error or "")
        assert_counted_once(rig)


async def test_the_llhttp_reader_verifies_tls_with_the_trust_settings(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await started([], tls=server_tls(pki))
    assert server.base_url.startswith("https://")
    # Not trusted: the test CA is in no bundle.
    async with server, Rig(server, reader="llhttp") as rig:
        await rig.wait_for(lambda: rig.reconnects()["unreachable"] >= 1, what="a TLS failure")
        assert "CERTIFICATE_VERIFY_FAILED" in (rig.status.last_error or "")
        assert rig.status.position is None
        # Trusted through SSL_CERT_FILE, as httpx trusts it.
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
        async with Rig(server, reader="llhttp") as trusted:
            await trusted.wait_position(LAST)
            assert trusted.reconnects()["unreachable"] == 0


class ForwardProxy:
    """An HTTP forward proxy on loopback: takes absolute-form requests, forwards them in origin
    form, and pipes the answer back; `targets` records what it was asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, version = head.split(b"\r\n", 1)[0].split(b" ")
        url = httpx.URL(target.decode())
        self.targets.append(str(url))
        up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
        rest = head.split(b"\r\n", 1)[1]
        up_writer.write(b"%b %b %b\r\n%b" % (method, url.raw_path, version, rest))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def aclose(self) -> None:
        for task in list(self._pipes):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_with_a_proxy_set_the_stream_goes_through_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = ForwardProxy()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", await proxy.start())
    server = await started([])
    try:
        async with server, Rig(server, trust_env=True) as rig:
            assert rig.stream.reader == "httpx"
            assert rig.endpoints.status()["stream_reader"] == "httpx"
            await rig.wait_position(LAST)
            assert_counted_once(rig)
        assert proxy.targets == [f"{server.base_url}{WATCH_PATH}"]
    finally:
        await proxy.aclose()


async def test_a_quiet_streams_updates_gather_into_few_reads_and_none_is_lost() -> None:
    # Twenty updates 10 ms apart: read at once, nearly one read each; gathered for 200 ms
    # after each read that emptied the socket, a handful of reads for all of them.
    trickle: list[Action] = []
    for _ in range(20):
        trickle += [Send(1), Stall(0.01)]
    reads = {}
    for gather in (0.0, 0.2):
        server = await started([[*trickle, Stall(60)]])
        async with server, Rig(server, reader="llhttp", gather=gather) as rig:
            await rig.wait_position(20)
            assert rig.status.position == 20
            reads[gather] = rig.reads
    assert reads[0.2] <= 6
    assert reads[0.0] > 2 * reads[0.2]


async def test_a_busy_stream_read_faster_than_it_is_sent_is_not_paused() -> None:
    # Writes of 40 updates (about 8 KiB) a few ms apart: each read empties the socket, as a
    # quiet stream's do, but at this rate a pause would hold the sender. Gathered for a
    # second after each, the 1.2 MB would come in about eight reads (as many as hold it, and
    # one at each pause); followed at once, about one read per write, fewer when the reader
    # falls behind and takes several at once.
    events = workload(tasks=1500)
    writes = len(events) // 40
    busy: list[Action] = []
    for _ in range(writes):
        busy += [Send(40, per_write=None), Stall(0.002)]
    server = ScriptedServer(events, [[*busy, Stall(60)]], bearer=BEARER)
    await server.start("127.0.0.1", 0)
    async with server, Rig(server, reader="llhttp", gather=1.0) as rig:
        await rig.wait_position(len(events))
        assert rig.status.position == len(events)
        assert rig.reads >= writes // 4
        assert sum(rig.reconnects().values()) == 0


@pytest.mark.usefixtures("each_reader")
async def test_backpressure_stops_the_reading_not_the_connection() -> None:
    # A sink that is full from the first read on: nothing more is read while it is, the
    # wait (longer than the read timeout) is not the server's silence, and once it clears
    # every update arrives once.
    gate = asyncio.Event()
    asked = 0

    def backpressure() -> Awaitable[None] | None:
        nonlocal asked
        asked += 1
        return None if gate.is_set() else gate.wait()

    server = await started([[Send(5), Stall(0.3), Send(), Stall(60)]])
    async with server, Rig(server, read_timeout=1.0, backpressure=backpressure) as rig:
        await rig.wait_for(lambda: asked > 0, what="the first read")
        await asyncio.sleep(2.5)
        held_at = rig.status.position
        assert held_at is not None
        assert held_at <= 5
        assert asked == 1
        gate.set()
        await rig.wait_position(LAST)
        assert sum(rig.reconnects().values()) == 0
        assert_counted_once(rig)
