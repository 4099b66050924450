"""The simulator's references: the SDK's shapes, pointing at the simulator, which serves them."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from exporter.simulator.files import (
    CLAIM_CHECK_THRESHOLD,
    FILES_ORIGIN,
    MIME_TYPES,
    claim_check_ref,
    localize,
)
from exporter.simulator.server import WatchAllSimulator
from exporter.simulator.workload import Workload, WorkloadUpdate
from tests.sse_client import read_events

BEARER = "files-secret"
TAG = "__REQUENCE_type"
MAGIC = {
    "application/pdf": b"%PDF-",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/tiff": b"II*\x00",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": b"PK\x03\x04",
    "audio/mpeg": b"ID3",
}
FRAMED = {"x-requence-stream-protocol": "framed"}


def tagged(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every tagged dict in a payload, with the path it sits at."""
    if isinstance(value, dict):
        if TAG in value:
            yield path, value
        for key, item in value.items():
            yield from tagged(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from tagged(item, (*path, index))


def references(updates: list[WorkloadUpdate]) -> Iterator[tuple[WorkloadUpdate, str, Any, Any]]:
    for update in updates:
        for field in ("input", "data", "result"):
            for path, ref in tagged(update.data.get(field)):
                yield update, field, path, ref


def is_url(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and bool(parts.scheme) and bool(parts.netloc)


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@pytest.fixture(scope="module")
def sample() -> list[WorkloadUpdate]:
    return list(itertools.islice(Workload(2, rate=50.0), 30_000))


@pytest.mark.slow
def test_every_reference_has_the_shape_the_sdk_guards_accept(sample: list[WorkloadUpdate]) -> None:
    kinds: set[str] = set()
    for update, field, path, ref in references(sample):
        kind = ref[TAG]
        kinds.add(kind if kind != "RequenceCallback" else f"{kind}/{ref['lifetime']}")
        if kind in {"RequenceFile", "RequenceStream", "ClaimCheck"}:
            assert is_url(ref["url"]), ref
            assert ref["url"].startswith(f"{FILES_ORIGIN}/files/")
        if kind == "RequenceFile":
            assert is_positive_int(ref["size"]), ref
            assert ref["mime"] in MIME_TYPES.values()
        elif kind == "RequenceStream":
            assert ref["mime"] in MIME_TYPES.values()
        elif kind == "ClaimCheck":
            assert is_positive_int(ref["size"]), ref
            assert ref["size"] > CLAIM_CHECK_THRESHOLD
        else:
            assert kind == "RequenceCallback", ref
            assert field != "input", "the SDK refuses callbacks in a task input"
            assert ref["propertyPath"] == list(path)
            assert ref["outputName"] == update.data["output"]
            if ref["lifetime"] == "connection":
                assert isinstance(ref["sourceId"], str)
                assert len(ref["callbackId"]) == 36
            else:
                assert isinstance(ref["name"], str)
                assert ref["nodeId"] == update.data["node"]["id"]
    assert kinds == {
        "RequenceFile",
        "RequenceStream",
        "ClaimCheck",
        "RequenceCallback/connection",
        "RequenceCallback/durable",
    }


@pytest.fixture
async def sim() -> AsyncIterator[WatchAllSimulator]:
    workload = list(itertools.islice(Workload(6, rate=5000.0, time_scale=0.001), 400))
    simulator = WatchAllSimulator(bearer=BEARER, workload=workload)
    await simulator.start("127.0.0.1", 0)
    yield simulator
    await simulator.aclose()


async def test_files_are_served_with_the_stated_size_and_type(
    sim: WatchAllSimulator, client: httpx.AsyncClient
) -> None:
    events = await read_events(client, sim.base_url, bearer=BEARER, limit=400)
    files = [
        ref
        for event in events
        for field in ("input", "data", "result")
        for _path, ref in tagged(orjson.loads(event.data).get(field))
        if ref[TAG] == "RequenceFile"
    ]
    assert len(files) >= 10
    for ref in files[:12]:
        assert ref["url"].startswith(f"{sim.base_url}/files/file/")
        response = await client.get(ref["url"])  # no token: file URLs are capabilities
        assert response.status_code == 200
        assert response.headers["content-type"] == ref["mime"]
        assert len(response.content) == ref["size"]
        magic = MAGIC.get(ref["mime"])
        if magic is not None:
            assert response.content.startswith(magic[: ref["size"]])
        else:
            response.content.decode("utf-8")
        again = await client.get(ref["url"])
        assert again.content == response.content


async def test_a_claim_check_holds_json_of_its_size_with_served_references(
    sim: WatchAllSimulator, client: httpx.AsyncClient
) -> None:
    rng = random.Random(5)
    for _ in range(4):
        ref = orjson.loads(localize(orjson.dumps(claim_check_ref(rng)), sim.base_url))
        response = await client.get(ref["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert len(response.content) == ref["size"]
        value = orjson.loads(response.content)
        assert response.content == orjson.dumps(value)  # compact, as the SDK offloads it
        (nested,) = [found for _path, found in tagged(value)]
        assert nested[TAG] == "RequenceFile"
        assert nested["url"].startswith(f"{sim.base_url}/files/file/")
        inner = await client.get(nested["url"])
        assert len(inner.content) == nested["size"]


def deframe(body: bytes) -> bytes:
    """The SDK's framed stream protocol: type u8, length u32 BE, payload; 0x01 ends it."""
    out = bytearray()
    while body:
        kind, length = body[0], int.from_bytes(body[1:5], "big")
        payload, body = body[5 : 5 + length], body[5 + length :]
        if kind == 1:
            assert not body, "bytes after the end frame"
            return bytes(out)
        assert kind == 0
        out += payload
    raise AssertionError("no end frame")


async def test_streams_are_framed_only_when_the_client_asks(
    sim: WatchAllSimulator, client: httpx.AsyncClient
) -> None:
    rng = random.Random(8)
    for ext in ("csv", "ndjson", "mp3"):
        url = f"{sim.base_url}/files/stream/{rng.getrandbits(64):016x}.{ext}"
        raw = await client.get(url)
        framed = await client.get(url, headers=FRAMED)
        assert raw.status_code == framed.status_code == 200
        assert raw.headers["content-type"] == MIME_TYPES[ext]
        assert "x-requence-stream-protocol" not in raw.headers
        assert framed.headers["x-requence-stream-protocol"] == "framed"
        assert len(raw.content) > 0
        assert deframe(framed.content) == raw.content


@pytest.mark.parametrize(
    "path",
    [
        "/files/file/0123456789abcdef-100.exe",
        "/files/file/0123456789abcdef-0.pdf",
        "/files/file/0123456789abcdef-99999999999.pdf",
        "/files/file/0123456789abcdef-9999999999.pdf",
        "/files/file/xyz-100.pdf",
        "/files/claim-check/0123456789abcdef-10",
        "/files/stream/0123456789abcdef",
        "/files/",
    ],
)
async def test_what_no_reference_names_is_not_found(
    sim: WatchAllSimulator, client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(f"{sim.base_url}{path}")
    assert response.status_code == 404
    assert response.json() == {"error": "no such file"}
