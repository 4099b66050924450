"""The official Python SDK (`requence` 0.8.2, from the package index) reads the simulator.

The SDK runs in a Python 3.12+ virtualenv of its own (`tests/sdk_venv.py`), driven by
`tests/sdk_driver.py`, against a simulator served here over real HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from exporter.requence.decode import parse_timestamp
from exporter.simulator.protocol import parse_since
from exporter.simulator.server import WatchAllSimulator
from exporter.simulator.workload import Workload
from tests.sdk_venv import sdk_python
from tests.sse_client import read_events

pytestmark = pytest.mark.slow

BEARER = "interop-secret"
DRIVER = str(Path(__file__).with_name("sdk_driver.py"))
TERMINAL = {"taskEnd", "taskError", "taskAborted"}
UPDATE_TYPES = TERMINAL | {"taskStart", "nodeStart", "nodeUpdate", "nodeError", "nodeDefer"}
UPDATE_TYPES |= {"nodeEnd"}
TAG = "__REQUENCE_type"


@pytest.fixture(scope="module")
def sdk() -> str:
    return sdk_python()


async def run_driver(python: str, *args: str) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        python,
        DRIVER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(240):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()[-3000:]
    return [json.loads(line) for line in out.decode().splitlines()]


async def resolve(value: Any, http: httpx.AsyncClient) -> Any:
    """What the SDK's ingress should make of a payload, as the driver describes it."""
    if isinstance(value, list):
        return [await resolve(item, http) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: await resolve(item, http) for key, item in value.items()}
    tag = value.get(TAG)
    if tag == "ClaimCheck":
        response = await http.get(value["url"])
        assert response.status_code == 200
        assert len(response.content) == value["size"]
        return await resolve(response.json(), http)
    if tag == "RequenceCallback":
        return "<callback>"
    if tag in {"RequenceFile", "RequenceStream"}:
        return {tag: value}
    return value


async def test_task_watcher_yields_what_was_sent_until_its_own_key_error(
    sdk: str, client: httpx.AsyncClient
) -> None:
    sim = WatchAllSimulator(bearer=BEARER, seed=3, rate=100.0, time_scale=0.1)
    await sim.start("127.0.0.1", 0)
    try:
        lines = await run_driver(sdk, "watch", sim.access_token, "120")
        async with asyncio.timeout(30):
            events = await read_events(client, sim.base_url, bearer=BEARER, limit=sim.position)
    finally:
        await sim.aclose()

    since, *yielded, stop = lines
    # The SDK's own form: naive local time, which the simulator reads as local time.
    assert datetime.fromisoformat(since["since"]).tzinfo is None
    bound = parse_since(since["since"])
    assert bound is not None
    sent = [(e.event, orjson.loads(e.data)) for e in events]
    first = next(
        i for i, (_, data) in enumerate(sent) if parse_timestamp(data["timestamp"]) > bound
    )
    end = next(i for i in range(first, len(sent)) if sent[i][0] in TERMINAL)
    assert end - first >= 20, "too few updates before the first terminal one to compare"
    assert len(yielded) == end - first

    for record, (kind, data) in zip(yielded, sent[first:end], strict=True):
        update, context = record["update"], record["context"]
        assert update.pop("type") == kind
        root = update.pop("root_task_id")
        assert update == data  # every field, as sent
        if kind == "taskStart":
            assert root == data.get("rootTaskId")
            assert context["input"] == await resolve(data["input"], client)
            assert record["incomplete"] is False
        alias = data.get("node", {}).get("alias")
        if kind == "nodeUpdate" and alias:
            assert context["node_data"] == {alias: await resolve(data["data"], client)}

    # Its watcher keeps no task state: `del task_storage[task_id]` fails at the first terminal
    # update, and the monitor thread dies. That, and nothing else, is how it stops.
    assert stop == {"stopped": "KeyError", "args": [sent[end][1]["task_id"]]}


async def test_every_payload_of_a_long_stream_passes_the_sdk_ingress(sdk: str) -> None:
    count = 20_000
    workload = list(itertools.islice(Workload(11, rate=5000.0, time_scale=0.001), count))
    sim = WatchAllSimulator(bearer=BEARER, workload=workload, history=count)
    await sim.start("127.0.0.1", 0)
    try:
        async with asyncio.timeout(60):
            await sim.wait_for_position(count)
        (summary,) = await run_driver(sdk, "ingress", sim.base_url, BEARER, str(count))
    finally:
        await sim.aclose()

    assert summary["errors"] == []
    assert sum(summary["types"].values()) == count
    assert set(summary["types"]) == UPDATE_TYPES
    kinds = summary["kinds"]
    assert set(kinds) == {
        "RequenceFile",
        "RequenceStream",
        "ClaimCheck",
        "RequenceCallback/connection",
        "RequenceCallback/durable",
    }
    # Each claim-check was fetched from the simulator, once.
    assert summary["claim_checks_fetched"] == kinds["ClaimCheck"]
    # Files read through the SDK have the stated size; streams end with the end frame.
    assert summary["files"]
    assert all(read == stated for read, stated in summary["files"])
    assert summary["streams"]
    assert all(size > 0 for size in summary["streams"])
