"""Basic auth under attack, over loopback against the real exporter's HTTP server.

Hostile `Authorization` headers get a plain 401, never a 500 and a traceback; unknown user names
are checked at the costs real users have, so timing does not single out the real ones; and a
flood of wrong passwords, repeated or new, never locks valid scrapes out, even of a process that
has verified nothing yet.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import bcrypt
import httpx
import pytest

from exporter.app import Exporter
from exporter.config import settings_for
from exporter.serving.basicauth import (
    MAX_WAITING_CHECKS,
    MAX_WAITING_SUSPECT,
    BasicAuth,
    Busy,
)

USER = "prometheus"
PASSWORD = "correct horse battery staple"
Start = Callable[[dict[str, bytes]], Awaitable[str]]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Run the real exporter with these basic auth users; its stream points at a refused port."""
    running: list[tuple[asyncio.Event, asyncio.Task[int]]] = []
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))

    async def go(users: dict[str, bytes]) -> str:
        config = tmp_path / "web.yml"
        lines = [f"  {name}: '{hashed.decode()}'" for name, hashed in users.items()]
        config.write_text("basic_auth_users:\n" + "\n".join(lines) + "\n")
        settings = settings_for(
            [
                "--api-url", f"http://127.0.0.1:{refused.getsockname()[1]}",
                "--bearer-token", "unused", "--listen", "127.0.0.1:0",
                "--web.config.file", str(config),
            ],
            env={},
        )  # fmt: skip
        exporter = Exporter(settings)
        host, port = await exporter.start_server()
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(exporter.run(stop))))
        return f"http://{host}:{port}"

    yield go
    for stop, task in running:
        stop.set()
        async with asyncio.timeout(10):
            await task
    refused.close()


@pytest.fixture(scope="module")
def cheap_hash() -> bytes:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4))


async def test_a_non_ascii_authorization_header_is_401_and_logs_nothing(
    start: Start, cheap_hash: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = await start({USER: cheap_hash})
    headers = [b"Basic \xc3\xa9t\xc3\xa9", b"Basic \xff\xfe", b"basic  \xe2\x82\xac:x"]
    async with httpx.AsyncClient() as client:
        for i in range(200):
            response = await client.get(
                f"{url}/metrics", headers={"Authorization": headers[i % len(headers)]}
            )
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Basic realm="requence-exporter"'
        assert (
            await client.get(f"{url}/metrics", headers=basic(USER, PASSWORD))
        ).status_code == 200
    noisy = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or r.name in ("exporter.serving.http_server", "exporter.serving.basicauth")
    ]
    assert noisy == []


class RecordingAuth(BasicAuth):
    """BasicAuth that records the cost of every hash it checks against."""

    def __init__(self, users: dict[str, bytes]) -> None:
        super().__init__(users)
        self.costs: list[int] = []

    def _bcrypt_check(self, password: bytes, stored: bytes | int) -> bool:
        self.costs.append(stored if isinstance(stored, int) else int(stored.split(b"$")[2]))
        return super()._bcrypt_check(password, stored)


async def test_unknown_names_are_checked_at_the_costs_real_users_have() -> None:
    low = bcrypt.hashpw(b"a", bcrypt.gensalt(4))
    high = bcrypt.hashpw(b"b", bcrypt.gensalt(6))
    auth = RecordingAuth({"alice": low, "bob": high})
    assert not await auth.check("alice", b"wrong")
    assert auth.costs == [4]
    names = [f"stranger-{i}" for i in range(40)]
    for name in names:
        assert not await auth.check(name, b"wrong")
    strangers = auth.costs[1:]
    # Some unknown names answer as quickly as alice: a quick answer does not single her out.
    assert set(strangers) == {4, 6}
    # The same name always costs the same, so asking again reveals nothing new.
    assert [auth.dummy_cost(name) for name in names] == strangers


async def test_a_repeated_wrong_password_costs_one_bcrypt_check() -> None:
    auth = RecordingAuth({USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4))})
    for _ in range(50):
        assert not await auth.check(USER, b"old password")
        assert not await auth.check("stranger", b"x")
    assert len(auth.costs) == 2
    assert await auth.check(USER, PASSWORD.encode())
    assert len(auth.costs) == 3


async def test_each_address_has_one_check_waiting_at_most() -> None:
    auth = BasicAuth({USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4))})
    await auth._turns.take(0)  # a check is running: the next ones wait
    first = asyncio.create_task(auth.check(USER, b"guess-1", "10.0.0.9"))
    await asyncio.sleep(0)
    with pytest.raises(Busy):
        await auth.check(USER, b"guess-2", "10.0.0.9")
    valid = asyncio.create_task(auth.check(USER, PASSWORD.encode(), "10.0.0.1"))
    await asyncio.sleep(0)
    auth._turns.give_back()
    assert not await first
    assert await valid


async def test_addresses_that_failed_wait_behind_those_that_have_not() -> None:
    auth = RecordingAuth({USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4))})
    flooders = [f"10.0.1.{i}" for i in range(MAX_WAITING_CHECKS + 4)]
    for i, address in enumerate(flooders):
        assert not await auth.check(USER, f"first-{i}".encode(), address)
        assert auth.suspect(address)
    await auth._turns.take(0)  # a check is running
    waiting = [
        asyncio.create_task(auth.check(USER, f"second-{i}".encode(), address))
        for i, address in enumerate(flooders[:MAX_WAITING_SUSPECT])
    ]
    await asyncio.sleep(0)
    # Their lane is full: more suspects are refused, a clean address is not, and goes first.
    with pytest.raises(Busy):
        await auth.check(USER, b"third", flooders[-1])
    valid = asyncio.create_task(auth.check(USER, PASSWORD.encode(), "10.0.0.1"))
    await asyncio.sleep(0)
    checked = len(auth.costs)
    auth._turns.give_back()
    assert await valid
    assert len(auth.costs) == checked + 1  # the valid one was checked next
    assert not any(await asyncio.gather(*waiting))


async def test_an_address_that_asks_again_and_again_while_refused_is_suspect() -> None:
    # A scraper refused once asks again a scrape interval later; a flood asks at once.
    auth = BasicAuth({USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4))})
    await auth._turns.take(0)
    waiting = asyncio.create_task(auth.check(USER, b"guess", "10.0.2.1"))
    await asyncio.sleep(0)
    for attempt in range(3):
        assert not auth.suspect("10.0.2.1"), attempt
        with pytest.raises(Busy):
            await auth.check(USER, f"again-{attempt}".encode(), "10.0.2.1")
    assert auth.suspect("10.0.2.1")
    assert not auth.suspect("10.0.2.2")
    auth._turns.give_back()
    assert not await waiting


@pytest.mark.slow
async def test_a_wrong_password_flood_never_locks_a_fresh_process_out(start: Start) -> None:
    # A fresh process has verified nothing yet, and more addresses guess than may wait: once
    # each has failed, valid scrapes from another address still pass the flood every time.
    # At cost 10 a check takes long enough for the flood to keep a queue full.
    url = await start({USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10))})
    addresses = [f"127.0.0.{2 + i}" for i in range(MAX_WAITING_CHECKS + 4)]
    stop = asyncio.Event()
    failed_once: set[str] = set()
    all_failed = asyncio.Event()
    flood_codes: list[int] = []

    async def flood(address: str) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(transport=transport, timeout=60.0) as client:
            n = 0
            while not stop.is_set():
                n += 1  # a new guess every time: nothing is answered from memory
                guess = basic(USER, f"guess-{address}-{n}")
                response = await client.get(f"{url}/metrics", headers=guess)
                flood_codes.append(response.status_code)
                if response.status_code == 401:
                    failed_once.add(address)
                    if len(failed_once) == len(addresses):
                        all_failed.set()

    flooders = [asyncio.create_task(flood(address)) for address in addresses]
    valid: list[int] = []
    try:
        async with asyncio.timeout(120):
            await all_failed.wait()
            async with httpx.AsyncClient(timeout=30.0) as client:
                for _ in range(10):
                    response = await client.get(f"{url}/metrics", headers=basic(USER, PASSWORD))
                    valid.append(response.status_code)
                    await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*flooders, return_exceptions=True)
    assert valid == [200] * 10
    assert set(flood_codes) <= {401, 429}
    assert 429 in flood_codes  # the flood was refused, not queued
