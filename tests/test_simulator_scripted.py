"""The scripted watch-all server: each connection behaves as its plan says, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse

from exporter.requence.token import decode_token
from exporter.simulator.scripted import (
    Action,
    Close,
    Comment,
    Drop,
    DropMidEvent,
    Duplicate,
    Event,
    Hang,
    Raw,
    Respond,
    ScriptedServer,
    Send,
    Stall,
)
from tests.sse_client import read_events, watch_body

BEARER = "scripted-secret"
Start = Callable[..., Awaitable[ScriptedServer]]


def make_events(count: int) -> list[Event]:
    return [
        Event(
            "nodeUpdate",
            {
                "task_id": f"task-{i % 3}",
                "timestamp": f"2026-01-01T00:00:{i:02d}.000Z",
                "updateId": f"u-{i}",
                "node": {"id": "n", "type": "service", "alias": "a"},
                "data": {"i": i},
            },
        )
        for i in range(1, count + 1)
    ]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[ScriptedServer] = []

    async def run(
        plans: Sequence[Sequence[Action]] = (), events: list[Event] | None = None, **options: Any
    ) -> ScriptedServer:
        options.setdefault("bearer", BEARER)
        server = ScriptedServer(make_events(10) if events is None else events, plans, **options)
        servers.append(server)
        await server.start("127.0.0.1", 0)
        return server

    yield run
    for server in servers:
        await server.aclose()


def ids(events: list[ServerSentEvent]) -> list[int]:
    return [int(event.id) for event in events]


async def post_watch(
    client: httpx.AsyncClient, server: ScriptedServer, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{server.base_url}/task/watch-all",
        json=watch_body(**body),
        headers={"Authorization": f"Bearer {BEARER}"},
    )


async def test_drop_then_gateway_error_then_resume(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Send(5), DropMidEvent()], [Respond(503)], [Send()]])
    received: list[ServerSentEvent] = []
    async with asyncio.timeout(10):
        with pytest.raises(httpx.RemoteProtocolError):
            await read_events(client, server.base_url, bearer=BEARER, received=received)
        assert ids(received) == [1, 2, 3, 4, 5]

        gateway = await post_watch(client, server, last_position=5)
        assert gateway.status_code == 503
        assert gateway.headers["content-type"] == "text/html"
        assert b"<h1>503 Service Unavailable</h1>" in gateway.content

        rest = await read_events(client, server.base_url, bearer=BEARER, limit=5, last_position=5)
    assert ids(rest) == [6, 7, 8, 9, 10]
    assert [orjson.loads(e.data)["data"]["i"] for e in rest] == [6, 7, 8, 9, 10]
    bodies = [request.json for request in server.requests]
    assert bodies == [watch_body(), watch_body(last_position=5), watch_body(last_position=5)]
    assert server.sent == [[1, 2, 3, 4, 5], [], [6, 7, 8, 9, 10]]
    assert server.connections == 3


@pytest.mark.parametrize("status", [401, 403, 502, 504, 200])
async def test_status_answers(start: Start, client: httpx.AsyncClient, status: int) -> None:
    server = await start([[Respond(status)]])
    response = await post_watch(client, server)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>")


async def test_non_sse_200_is_rejected_by_an_sse_client(
    start: Start, client: httpx.AsyncClient
) -> None:
    server = await start([[Respond(200, b"<html>maintenance</html>")]])
    with pytest.raises(SSEError, match="text/event-stream"):
        await read_events(client, server.base_url, bearer=BEARER)


async def test_respond_with_custom_body_and_type(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Respond(401, b'{"error":"nope"}', "application/json")]])
    response = await post_watch(client, server)
    assert response.status_code == 401
    assert response.json() == {"error": "nope"}


async def test_hang_zero_drops_without_a_response(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Hang(0)]])
    with pytest.raises(httpx.RemoteProtocolError):
        await post_watch(client, server)


async def test_hang_leaves_the_client_waiting_for_headers(start: Start) -> None:
    server = await start([[Hang(30)]])
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await post_watch(client, server)


async def test_stall_sends_nothing_while_connected(start: Start) -> None:
    server = await start([[Send(2), Stall(30), Send()]])
    received: list[ServerSentEvent] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await read_events(client, server.base_url, bearer=BEARER, received=received)
    assert ids(received) == [1, 2]


async def test_drop_between_events(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Send(3), Drop()]])
    received: list[ServerSentEvent] = []
    with pytest.raises(httpx.RemoteProtocolError):
        await read_events(client, server.base_url, bearer=BEARER, received=received)
    assert ids(received) == [1, 2, 3]


async def test_duplicate_on_resume(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Send(2), Drop()], [Duplicate(), Send(3), Close()]])
    with pytest.raises(httpx.RemoteProtocolError):
        await read_events(client, server.base_url, bearer=BEARER)
    resumed = await read_events(client, server.base_url, bearer=BEARER, last_position=2)
    assert ids(resumed) == [2, 3, 4, 5]
    assert server.sent[1] == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "send", [Send(), Send(per_write=None), Send(per_write=3), Send(chunk_size=7)]
)
async def test_write_patterns_carry_the_same_events(
    start: Start, client: httpx.AsyncClient, send: Send
) -> None:
    server = await start([[send, Close()]])
    events = await read_events(client, server.base_url, bearer=BEARER)
    assert ids(events) == list(range(1, 11))
    assert [orjson.loads(e.data)["updateId"] for e in events] == [f"u-{i}" for i in range(1, 11)]


async def test_comments_raw_bytes_and_clean_close(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Comment("hello"), Send(1), Raw(b"event: custom\ndata: x\n\n"), Close()]])
    async with client.stream(
        "POST",
        f"{server.base_url}/task/watch-all",
        json=watch_body(),
        headers={"Authorization": f"Bearer {BEARER}"},
    ) as response:
        body = await response.aread()
    assert body.startswith(b": hello\n\nevent: nodeUpdate\nid: 1\ndata: {")
    assert body.endswith(b"\n\nevent: custom\ndata: x\n\n")


async def test_explicit_positions_and_raw_data(start: Start, client: httpx.AsyncClient) -> None:
    events = [
        Event("taskStart", {"task_id": "t"}, position=100),
        Event("nodeStart", b"{not json"),
        Event("taskEnd", {"task_id": "t"}, position=500),
    ]
    server = await start([[Send(), Close()]], events=events)
    assert server.positions == [100, 101, 500]
    got = await read_events(client, server.base_url, bearer=BEARER)
    assert [(e.event, e.id, e.data) for e in got] == [
        ("taskStart", "100", '{"task_id":"t"}'),
        ("nodeStart", "101", "{not json"),
        ("taskEnd", "500", '{"task_id":"t"}'),
    ]
    resumed = await read_events(client, server.base_url, bearer=BEARER, last_position=101, limit=1)
    assert ids(resumed) == [500]


async def test_fallback_after_the_plans_sends_everything_and_stays_open(
    start: Start, client: httpx.AsyncClient
) -> None:
    server = await start([[Respond(502)]])
    assert (await post_watch(client, server)).status_code == 502
    async with asyncio.timeout(10):
        events = await read_events(client, server.base_url, bearer=BEARER, limit=10)
    assert ids(events) == list(range(1, 11))


async def test_honor_since_filters_by_event_timestamp(
    start: Start, client: httpx.AsyncClient
) -> None:
    server = await start([[Send(), Close()]], honor_since=True)
    events = await read_events(
        client, server.base_url, bearer=BEARER, since="2026-01-01T00:00:07.000Z"
    )
    assert ids(events) == [8, 9, 10]


async def test_bearer_and_body_are_checked(start: Start, client: httpx.AsyncClient) -> None:
    server = await start()
    wrong = await client.post(
        f"{server.base_url}/task/watch-all",
        json=watch_body(),
        headers={"Authorization": "Bearer nope"},
    )
    missing_since = await client.post(
        f"{server.base_url}/task/watch-all",
        json={"lastPosition": 3},
        headers={"Authorization": f"Bearer {BEARER}"},
    )
    assert wrong.status_code == 401
    assert missing_since.status_code == 400
    assert server.connections == 0
    assert len(server.requests) == 2
    assert decode_token(server.access_token).bearer_token == BEARER


async def test_acks_are_recorded(start: Start, client: httpx.AsyncClient) -> None:
    server = await start()
    response = await client.post(f"{server.base_url}/task/ack/t-9")
    assert response.status_code == 200
    assert server.acks == ["t-9"]


async def test_wait_for_connections(start: Start, client: httpx.AsyncClient) -> None:
    server = await start([[Send(1)]])

    async def watch_once() -> None:
        async with (
            aconnect_sse(
                client,
                "POST",
                f"{server.base_url}/task/watch-all",
                json=watch_body(),
                headers={"Authorization": f"Bearer {BEARER}"},
            ) as source,
            contextlib.aclosing(source.aiter_sse()) as stream,
        ):
            await anext(stream)

    async with asyncio.timeout(10):
        task = asyncio.create_task(watch_once())
        await server.wait_for_connections(1)
        await task
    assert server.connections == 1
