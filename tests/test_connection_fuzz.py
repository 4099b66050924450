"""The llhttp reader's response protocol on a real socket, fed responses split anywhere.

A valid response (an optional 1xx head first, a chunked or close-delimited body, any chunk and
write sizes) hands the intake exactly its body, in order, whether the intake settles each read
or none; arbitrary bytes end in an httpx transport error or a clean end, never anything else,
never a hang, and never more body than was sent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.requence.connection import Response

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Recorder:
    """An intake that keeps every read; `settle_every` reads ask for `settle`."""

    def __init__(self, settle_every: int) -> None:
        self.reads: list[bytes] = []
        self.settled = 0
        self._settle_every = settle_every

    def take(self, raw: bytes) -> bool:
        self.reads.append(raw)
        return self._settle_every > 0 and len(self.reads) % self._settle_every == 0

    async def settle(self) -> None:
        await asyncio.sleep(0)
        self.settled += 1


def pieces(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        if at >= len(data):
            break
        out.append(data[at : at + size])
        at += size
    if at < len(data):
        out.append(data[at:])
    return out


async def serve(wire: Sequence[bytes], intake: Recorder) -> BaseException | None:
    """Write `wire` a piece per turn into one end of a socket pair and read the other end
    with `Response`; what ended it (None for a clean end)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, response = await loop.create_connection(Response, sock=ours)

    async def write() -> None:
        for piece in wire:
            await loop.sock_sendall(theirs, piece)
            await asyncio.sleep(0)
        theirs.close()

    writer = asyncio.create_task(write())
    try:
        async with asyncio.timeout(10):
            await response.head()
            await response.pump(intake)
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        return exc
    finally:
        transport.abort()
        await writer
    return None


def chunked(body: bytes, sizes: Sequence[int]) -> bytes:
    framed = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces(body, sizes) if p)
    return framed + b"0\r\n\r\n"


@FUZZ
@given(
    body=st.binary(max_size=4000),
    chunk_sizes=st.lists(st.integers(1, 700), max_size=12),
    write_sizes=st.lists(st.integers(1, 300), max_size=30),
    informational=st.booleans(),
    framing=st.sampled_from(["chunked", "close"]),
    settle_every=st.integers(0, 3),
)
def test_a_valid_response_hands_the_intake_its_body_however_it_is_split(
    *,
    body: bytes,
    chunk_sizes: list[int],
    write_sizes: list[int],
    informational: bool,
    framing: str,
    settle_every: int,
) -> None:
    head = b"HTTP/1.1 100 Continue\r\n\r\n" if informational else b""
    head += b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    if framing == "chunked":
        wire = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, chunk_sizes)
    else:
        wire = head + b"Connection: close\r\n\r\n" + body
    intake = Recorder(settle_every)
    ended = asyncio.run(serve(pieces(wire, write_sizes), intake))
    assert ended is None
    assert b"".join(intake.reads) == body
    if settle_every:
        assert intake.settled == len(intake.reads) // settle_every


@FUZZ
@given(
    junk=st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda tail: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tail,
            st.binary(max_size=2000),
        ),
    ),
    write_sizes=st.lists(st.integers(1, 300), max_size=20),
)
def test_arbitrary_bytes_end_in_a_transport_error_or_a_clean_end(
    junk: bytes, write_sizes: list[int]
) -> None:
    intake = Recorder(settle_every=2)
    ended = asyncio.run(serve(pieces(junk, write_sizes), intake))
    assert ended is None or isinstance(ended, httpx.RemoteProtocolError | httpx.ReadError)
    assert sum(map(len, intake.reads)) <= len(junk)
