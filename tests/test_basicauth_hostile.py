"""Basic auth under attack, over loopback against the real exporter's HTTP server.

Hostile `Authorization` headers get a plain 401, never a 500 and a traceback; unknown user names
are checked at the costs real users have, so timing does not single out the real ones; and a
flood of wrong passwords cannot queue without bound ahead of a valid scrape.
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
from exporter.serving.basicauth import MAX_WAITING_CHECKS, BasicAuth

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


async def test_a_flood_of_wrong_passwords_does_not_queue_ahead_of_a_valid_scrape(
    start: Start,
) -> None:
    url = await start({USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(8))})
    finished: list[str] = []

    async def get(label: str, headers: dict[str, str]) -> int:
        response = await client.get(f"{url}/metrics", headers=headers)
        finished.append(f"{label}:{response.status_code}")
        return response.status_code

    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        flood = [asyncio.create_task(get("wrong", basic(USER, f"guess-{i}"))) for i in range(100)]
        await asyncio.sleep(0.3)  # let the flood arrive first
        # While four checks wait, a new one is told to retry (429): retry until it is taken.
        for _ in range(200):  # bounded: 20 s at most
            finished.append("valid sent")
            if await get("valid", basic(USER, PASSWORD)) != 429:
                break
            await asyncio.sleep(0.1)
        codes = await asyncio.gather(*flood)
    assert "valid:200" in finished
    accepted = len(finished) - 1 - finished[::-1].index("valid sent")
    between = finished[accepted : finished.index("valid:200")]
    checked_before = between.count("wrong:401")
    # Those running or waiting when the valid scrape was taken, and no more.
    assert checked_before <= MAX_WAITING_CHECKS + 1
    assert set(codes) == {401, 429}
    assert codes.count(401) >= 1
