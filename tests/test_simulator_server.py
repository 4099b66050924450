"""The real-time watch-all simulator over real HTTP, read with httpx and httpx-sse."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from exporter.core.updates import Update
from exporter.requence.decode import decode_update, parse_timestamp
from exporter.requence.token import decode_token
from exporter.simulator.files import localize
from exporter.simulator.server import WatchAllSimulator, serve_simulator
from exporter.simulator.workload import Workload, WorkloadUpdate
from tests.sse_client import read_events, watch_body

BEARER = "sim-secret"
ROOT = str(Path(__file__).resolve().parents[1])
COUNT = 300
Start = Callable[..., Awaitable[WatchAllSimulator]]


def finite_workload(count: int = COUNT, seed: int = 4) -> list[WorkloadUpdate]:
    """A short, fast burst of updates, so the stream goes idle soon after."""
    return list(itertools.islice(Workload(seed, rate=5000.0, time_scale=0.001), count))


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[WatchAllSimulator] = []

    async def run(**options: Any) -> WatchAllSimulator:
        options.setdefault("bearer", BEARER)
        options.setdefault("workload", finite_workload())
        simulator = WatchAllSimulator(**options)
        started.append(simulator)
        await simulator.start("127.0.0.1", 0)
        return simulator

    yield run
    for simulator in started:
        await simulator.aclose()


async def all_events(sim: WatchAllSimulator, http: httpx.AsyncClient) -> list[ServerSentEvent]:
    async with asyncio.timeout(10):
        await sim.wait_for_position(COUNT)
        return await read_events(http, sim.base_url, bearer=BEARER, limit=COUNT)


def decoded(event: ServerSentEvent) -> Update:
    update = decode_update(event.event, event.data.encode(), int(event.id))
    assert isinstance(update, Update), update
    return update


async def test_streams_the_workload_in_order_with_increasing_positions(
    start: Start, client: httpx.AsyncClient
) -> None:
    workload = finite_workload()
    sim = await start(workload=workload)
    events = await all_events(sim, client)
    assert [int(e.id) for e in events] == list(range(1, COUNT + 1))
    assert [e.event for e in events] == [u.type for u in workload]
    for event, update in zip(events, workload, strict=True):
        data = orjson.loads(event.data)
        assert data.pop("timestamp")
        sent = {k: v for k, v in update.data.items() if k != "timestamp"}
        assert data == orjson.loads(localize(orjson.dumps(sent), sim.base_url))
    updates = [decoded(e) for e in events]
    stamps = [u.timestamp for u in updates]
    assert stamps == sorted(stamps)
    assert sim.position == COUNT


async def test_timestamps_are_emission_times(start: Start, client: httpx.AsyncClient) -> None:
    before = time.time()
    sim = await start()
    events = await all_events(sim, client)
    after = time.time()
    stamps = [decoded(e).timestamp for e in events]
    assert before - 0.001 <= stamps[0] <= stamps[-1] <= after


async def test_resume_with_last_position_returns_exactly_the_next_updates(
    start: Start, client: httpx.AsyncClient
) -> None:
    sim = await start()
    everything = await all_events(sim, client)
    for cut in (0, 1, 137, COUNT - 1):
        rest = await read_events(
            client, sim.base_url, bearer=BEARER, limit=COUNT - cut, last_position=cut
        )
        assert [(e.id, e.event, e.data) for e in rest] == [
            (e.id, e.event, e.data) for e in everything[cut:]
        ]


async def test_since_filters_by_timestamp(start: Start, client: httpx.AsyncClient) -> None:
    sim = await start()
    everything = await all_events(sim, client)
    middle = orjson.loads(everything[COUNT // 2].data)["timestamp"]
    cutoff = parse_timestamp(middle)
    expected = [e for e in everything if decoded(e).timestamp > cutoff]
    assert 0 < len(expected) < COUNT
    got = await read_events(client, sim.base_url, bearer=BEARER, since=middle, limit=len(expected))
    assert [e.id for e in got] == [e.id for e in expected]


async def test_since_and_last_position_combine(start: Start, client: httpx.AsyncClient) -> None:
    sim = await start()
    everything = await all_events(sim, client)
    middle = orjson.loads(everything[COUNT // 2].data)["timestamp"]
    cutoff = parse_timestamp(middle)
    expected = [e for e in everything[200:] if decoded(e).timestamp > cutoff]
    got = await read_events(
        client, sim.base_url, bearer=BEARER, since=middle, last_position=200, limit=len(expected)
    )
    assert [e.id for e in got] == [e.id for e in expected]


async def test_keep_alive_comments_when_idle(start: Start, client: httpx.AsyncClient) -> None:
    sim = await start(workload=finite_workload(3), keep_alive=0.05)
    lines: list[str] = []
    async with (
        asyncio.timeout(10),
        client.stream(
            "POST",
            f"{sim.base_url}/task/watch-all",
            json=watch_body(),
            headers={"Authorization": f"Bearer {BEARER}"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async with contextlib.aclosing(response.aiter_lines()) as stream:
            async for line in stream:
                lines.append(line)
                if lines.count(": keep-alive") >= 2:
                    break
    ids = [line for line in lines if line.startswith("id: ")]
    assert ids == ["id: 1", "id: 2", "id: 3"]
    assert lines.index(": keep-alive") > lines.index("id: 3")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": BEARER}],
)
async def test_wrong_bearer_gets_401(
    start: Start, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    sim = await start()
    watch = await client.post(f"{sim.base_url}/task/watch-all", json=watch_body(), headers=headers)
    ack = await client.post(f"{sim.base_url}/task/ack/abc", headers=headers)
    assert watch.status_code == 401
    assert ack.status_code == 401
    assert sim.acks == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"since": "yesterday"}',
        b'{"since": 12}',
        b'{"since": "2026-01-01T00:00:00Z", "lastPosition": "5"}',
        b'{"since": "2026-01-01T00:00:00Z", "lastPosition": true}',
        b'{"since": "2026-01-01T00:00:00Z", "lastPosition": -1}',
    ],
)
async def test_bad_body_gets_400(start: Start, client: httpx.AsyncClient, body: bytes) -> None:
    sim = await start()
    response = await client.post(
        f"{sim.base_url}/task/watch-all",
        content=body,
        headers={"Authorization": f"Bearer {BEARER}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]


async def test_routes_and_methods(start: Start, client: httpx.AsyncClient) -> None:
    sim = await start()
    auth = {"Authorization": f"Bearer {BEARER}"}
    assert (await client.get(f"{sim.base_url}/task/watch-all", headers=auth)).status_code == 405
    assert (await client.post(f"{sim.base_url}/nope", headers=auth)).status_code == 404


async def test_acks_and_requests_are_recorded(start: Start, client: httpx.AsyncClient) -> None:
    sim = await start()
    auth = {"Authorization": f"Bearer {BEARER}"}
    response = await client.post(f"{sim.base_url}/task/ack/task-1", headers=auth)
    assert response.status_code == 200
    await read_events(client, sim.base_url, bearer=BEARER, limit=1, last_position=7)
    assert sim.acks == ["task-1"]
    watch = [r for r in sim.requests if r.path == "/task/watch-all"]
    assert watch[-1].json == watch_body(last_position=7)
    assert watch[-1].headers["accept"] == "text/event-stream"
    assert watch[-1].headers["authorization"] == f"Bearer {BEARER}"


async def test_history_is_bounded_and_resume_starts_at_the_oldest_kept(
    start: Start, client: httpx.AsyncClient
) -> None:
    sim = await start(history=100)
    async with asyncio.timeout(10):
        await sim.wait_for_position(COUNT)
    assert 100 <= sim.emitted <= 125
    oldest = COUNT - sim.emitted + 1
    events = await read_events(client, sim.base_url, bearer=BEARER, limit=sim.emitted)
    assert [int(e.id) for e in events] == list(range(oldest, COUNT + 1))


async def test_first_position_and_token(start: Start) -> None:
    sim = await start(first_position=1_000_000)
    async with asyncio.timeout(10):
        await sim.wait_for_position(1_000_000 + COUNT - 1)
    credentials = decode_token(sim.access_token)
    assert credentials.api_url == sim.base_url
    assert credentials.bearer_token == BEARER


async def test_aclose_ends_an_open_stream(start: Start, client: httpx.AsyncClient) -> None:
    sim = await start(workload=finite_workload(2), keep_alive=60)
    async with (
        asyncio.timeout(10),
        aconnect_sse(
            client,
            "POST",
            f"{sim.base_url}/task/watch-all",
            json=watch_body(),
            headers={"Authorization": f"Bearer {BEARER}"},
        ) as source,
        contextlib.aclosing(source.aiter_sse()) as stream,
    ):
        assert [(await anext(stream)).id, (await anext(stream)).id] == ["1", "2"]
        await sim.aclose()
        with pytest.raises(httpx.RemoteProtocolError):
            await anext(stream)


async def test_serve_simulator_runs_the_seeded_workload(client: httpx.AsyncClient) -> None:
    sim = await serve_simulator("127.0.0.1", 0, seed=3, rate=400.0, bearer=BEARER)
    try:
        async with asyncio.timeout(20):
            events = await read_events(client, sim.base_url, bearer=BEARER, limit=50)
    finally:
        await sim.aclose()
    expected = list(itertools.islice(Workload(3, rate=400.0, time_scale=0.1), 50))
    assert [e.event for e in events] == [u.type for u in expected]
    assert [orjson.loads(e.data)["updateId"] for e in events] == [
        u.data["updateId"] for u in expected
    ]


async def test_command_line_prints_a_working_token(client: httpx.AsyncClient) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "2",
        "--rate",
        "200",
        "--bearer",
        BEARER,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            lines = [(await process.stdout.readline()).decode() for _ in range(2)]
            printed = dict(line.split(":", 1) for line in lines)
            credentials = decode_token(printed["access token"].strip())
            assert credentials.api_url == printed["base URL"].strip()
            events = await read_events(client, credentials.api_url, bearer=BEARER, limit=5)
        assert [int(e.id) for e in events] == [1, 2, 3, 4, 5]
    finally:
        process.terminate()
        await process.wait()
