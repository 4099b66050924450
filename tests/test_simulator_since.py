"""`since` in the forms the SDKs send: with an offset, or naive local time (`isoformat()`)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime

import httpx
import orjson
import pytest

from exporter.requence.decode import parse_timestamp
from exporter.simulator.protocol import parse_since
from exporter.simulator.server import WatchAllSimulator
from exporter.simulator.workload import DEFAULT_EPOCH, Workload
from tests.sse_client import read_events

BEARER = "since-secret"
COUNT = 300


@pytest.fixture
def far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time 14 hours ahead of UTC (a POSIX zone rule: no zone database needed)."""
    monkeypatch.setenv("TZ", "XST-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_east")
def test_naive_times_are_local_and_offsets_are_honoured() -> None:
    assert parse_since("2026-01-01T14:00:00") == DEFAULT_EPOCH
    assert parse_since("2026-01-01T14:00:00.250000") == DEFAULT_EPOCH + 0.25
    assert parse_since("2026-01-01") == DEFAULT_EPOCH - 14 * 3600
    assert parse_since("2026-01-01T00:00:00Z") == DEFAULT_EPOCH
    assert parse_since("2026-01-01T00:00:00.000Z") == DEFAULT_EPOCH
    assert parse_since("2026-01-01T02:00:00+02:00") == DEFAULT_EPOCH
    assert parse_since(datetime.fromtimestamp(DEFAULT_EPOCH).isoformat()) == DEFAULT_EPOCH
    assert parse_since("yesterday") is None
    assert parse_since("99999-01-01") is None


@pytest.fixture
async def sim() -> AsyncIterator[WatchAllSimulator]:
    workload = list(itertools.islice(Workload(9, rate=5000.0, time_scale=0.001), COUNT))
    simulator = WatchAllSimulator(bearer=BEARER, workload=workload)
    await simulator.start("127.0.0.1", 0)
    async with asyncio.timeout(10):
        await simulator.wait_for_position(COUNT)
    yield simulator
    await simulator.aclose()


@pytest.mark.usefixtures("far_east")
async def test_the_python_sdks_since_selects_what_the_same_instant_in_utc_does(
    sim: WatchAllSimulator, client: httpx.AsyncClient
) -> None:
    async with asyncio.timeout(10):
        everything = await read_events(client, sim.base_url, bearer=BEARER, limit=COUNT)
    middle = orjson.loads(everything[COUNT // 2].data)["timestamp"]
    cutoff = parse_timestamp(middle)
    assert cutoff is not None
    expected = [
        e.id for e in everything if parse_timestamp(orjson.loads(e.data)["timestamp"]) > cutoff
    ]
    assert 0 < len(expected) < COUNT
    # What `TaskWatcher(since=...)` sends: `datetime.isoformat()` of a naive local datetime.
    naive = datetime.fromtimestamp(cutoff).isoformat()
    assert naive[:19] != middle[:19]
    for since in (middle, naive):
        async with asyncio.timeout(10):
            got = await read_events(
                client, sim.base_url, bearer=BEARER, since=since, limit=len(expected)
            )
        assert [e.id for e in got] == expected
    # A `date` (local midnight today) takes in everything emitted since.
    async with asyncio.timeout(10):
        got = await read_events(
            client, sim.base_url, bearer=BEARER, since=date.today().isoformat(), limit=COUNT
        )
    assert len(got) == COUNT
