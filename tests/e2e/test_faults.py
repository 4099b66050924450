"""Transient faults over loopback: the stream survives each one and the counts stay exact.

Most cases drive the real `WatchStream` + `Pipeline` + `Tracker` + `Metrics` in-process against
a `ScriptedServer` (fast, short backoff); the cases about exit codes, logs and /status run the
real exporter process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from exporter.simulator.scripted import (
    Action,
    Comment,
    Drop,
    DropMidEvent,
    Duplicate,
    Event,
    Respond,
    ScriptedServer,
    Send,
    Stall,
)
from tests.e2e.process import ExporterProcess
from tests.e2e.rig import SINCE, TASKS, Rig, assert_counted_once, workload
from tests.e2e.servers import LoopThread, serve
from tests.helpers import free_port

# Every test here runs through each stream reader.
pytestmark = pytest.mark.usefixtures("each_reader")

SCRIPT = workload()
LAST = len(SCRIPT)


def assert_resumed(rig: Rig, last_positions: list[int | None]) -> None:
    """Every request kept the first `since`; `lastPosition` was the last processed position."""
    requests = rig.watch_requests()
    assert [r.json["since"] for r in requests] == [SINCE] * len(requests)
    assert [r.json.get("lastPosition") for r in requests] == last_positions


async def started(plans: list[list[Action]], events: list[Event] = SCRIPT) -> ScriptedServer:
    server = ScriptedServer(events, plans, bearer="fault-bearer")
    await server.start("127.0.0.1", 0)
    return server


@pytest.mark.parametrize("code", [502, 503, 504])
async def test_gateway_errors_with_html_pages_are_retried(code: int) -> None:
    plans: list[list[Action]] = [[Send(6), Drop()], *[[Respond(code)]] * 3, [Send()]]
    server = await started(plans)
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        await rig.wait_for(lambda: rig.status.connected, what="the stream to connect")
        assert rig.reconnects() == {
            "unreachable": 3,
            "dropped": 1,
            "timeout": 0,
            "unauthorized": 0,
            "http_error": 0,
            "not_sse": 0,
        }
        assert rig.value("requence_exporter_stream_connected") == 1
        assert_counted_once(rig)
        assert_resumed(rig, [None, 6, 6, 6, 6])
        assert rig.status.connections == 2


async def test_refused_connections_are_retried_until_a_server_appears() -> None:
    port = free_port()
    server = ScriptedServer(SCRIPT, bearer="fault-bearer")
    async with Rig(server, api_url=f"http://127.0.0.1:{port}") as rig:
        await rig.wait_for(
            lambda: rig.status.reconnects["unreachable"] >= 3, what="three refused connections"
        )
        assert rig.value("requence_exporter_stream_connected") == 0
        status = rig.endpoints.status()
        assert status["connected"] is False
        assert "ConnectError" in status["last_error"]
        assert status["position"] is None
        await server.start("127.0.0.1", port)
        async with server:
            await rig.wait_position(LAST)
            assert rig.value("requence_exporter_stream_connected") == 1
            assert rig.endpoints.status()["connected"] is True
            assert_counted_once(rig)
            assert_resumed(rig, [None])
            assert rig.reconnects()["unreachable"] >= 3


async def test_a_drop_in_the_middle_of_an_event_does_not_apply_half_of_it() -> None:
    server = await started([[Send(9), DropMidEvent()], [Send(3), DropMidEvent()], [Send()]])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        # The half events (positions 10 and 13) were not processed: the resumes asked after
        # the last whole event, and the server sent them again, whole.
        assert_resumed(rig, [None, 9, 12])
        assert server.sent[1][0] == 10
        assert server.sent[2][0] == 13
        assert rig.reconnects()["dropped"] == 2
        assert_counted_once(rig)


async def test_a_stalled_stream_times_out_and_resumes() -> None:
    server = await started([[Send(5), Stall(30.0)], [Send()]])
    async with server, Rig(server, read_timeout=0.3) as rig:
        await rig.wait_position(LAST)
        assert rig.reconnects()["timeout"] == 1
        assert "ReadTimeout" in (rig.status.last_error or "")
        assert_resumed(rig, [None, 5])
        assert_counted_once(rig)


async def test_a_slow_server_writing_in_small_pieces_is_counted_exactly() -> None:
    plan: list[Action] = []
    for _ in range(LAST // 2):
        plan += [Send(1), Stall(0.01)]
    plan.append(Send(chunk_size=7))  # the rest, seven bytes per write
    server = await started([plan])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        assert sum(rig.reconnects().values()) == 0
        assert_resumed(rig, [None])
        assert_counted_once(rig)


async def test_a_duplicate_of_the_last_position_on_resume_is_skipped() -> None:
    server = await started([[Send(7), Drop()], [Duplicate(), Send()]])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        assert server.sent[1][:2] == [7, 8]
        assert_resumed(rig, [None, 7])
        assert_counted_once(rig, duplicate_position=1)


async def test_a_proxy_page_with_200_is_not_an_event_stream() -> None:
    portal = Respond(200, b"<html><body>Please log in to the network</body></html>")
    server = await started([[portal], [portal], [Send()]])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        assert rig.reconnects()["not_sse"] == 2
        assert_resumed(rig, [None, None, None])
        assert_counted_once(rig)


async def test_positions_going_backwards_are_a_server_reset_and_replays_are_not_counted() -> None:
    # The server restarts its positions at 1: new updates (new updateIds) are counted; old
    # updates sent again with their old updateIds are replays and are not.
    old = workload(2)
    new = workload(2, first=2)
    events = [
        *old,  # positions 1..8
        Event(new[0].type, new[0].data, 1),
        Event(new[1].type, new[1].data, 2),
        Event(old[2].type, old[2].data, 3),  # a replay, at a position never seen since the reset
        Event(old[3].type, old[3].data, 4),
        *(Event(e.type, e.data, 5 + i) for i, e in enumerate(new[2:])),  # positions 5..10
    ]
    server = await started([[Send()]], events)
    async with server, Rig(server) as rig:
        await rig.wait_position(10)
        assert rig.status.position_resets == 1
        assert rig.endpoints.status()["position_resets"] == 1
        assert rig.value("requence_exporter_stream_position") == 10
        assert sum(rig.reconnects().values()) == 0
        assert_counted_once(rig, tasks=4, duplicate_position=2)


async def test_keep_alive_comments_are_ignored_and_keep_the_stream_alive() -> None:
    plan: list[Action] = [Comment(), Send(3), Comment("ping"), Comment("")]
    # Comments arrive more often than the read timeout while no update does.
    plan += [Stall(0.2), Comment()] * 6
    plan.append(Send())
    server = await started([plan])
    async with server, Rig(server, read_timeout=1.0) as rig:
        await rig.wait_position(LAST)
        assert sum(rig.reconnects().values()) == 0
        assert_resumed(rig, [None])
        assert_counted_once(rig)


async def test_unauthorized_after_a_working_connection_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = Respond(401, b'{"error":"unauthorized"}', "application/json")
    server = await started([[Send(4), Drop()], [refused], [Send()]])
    with caplog.at_level(logging.WARNING, logger="exporter.requence.stream"):
        async with server, Rig(server) as rig:
            await rig.wait_position(LAST)
            assert rig.reconnects()["unauthorized"] == 1
            assert rig.task is not None
            assert not rig.task.done()
            assert_resumed(rig, [None, 4, 4])
            assert_counted_once(rig)
    # The reason is in the message; the reason and the error are the record's fields.
    assert any(
        "unauthorized" in r.getMessage()
        and getattr(r, "fields", {}).get("reason") == "unauthorized"
        and "HTTP 401" in getattr(r, "fields", {}).get("error", "")
        for r in caplog.records
    )


# -- the real process: exit codes, logs, /status -------------------------------------------------


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def scripted(loop: LoopThread, plans: list[list[Action]]) -> ScriptedServer:
    server = serve(loop, lambda: ScriptedServer(SCRIPT, plans, bearer="process-bearer"))
    assert isinstance(server, ScriptedServer)
    return server


def test_process_not_found_on_the_first_connection_exits_2_naming_the_url(
    loop: LoopThread,
) -> None:
    server = scripted(loop, [[Respond(404, b'{"error":"not found"}', "application/json")]])
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            assert exporter.proc is not None
            assert exporter.proc.wait(20) == 2
            log = exporter.log
    finally:
        loop.run(server.aclose())
    assert f"{server.base_url}/task/watch-all" in log
    assert "HTTP 404" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_process_unauthorized_after_connecting_is_logged_and_retried(loop: LoopThread) -> None:
    refused = Respond(401, b'{"error":"unauthorized"}', "application/json")
    server = scripted(loop, [[Send(4), Drop()], [refused], [Send()]])
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(LAST)
            assert exporter.value("requence_exporter_reconnects_total", reason="unauthorized") == 1
            assert exporter.value("requence_exporter_stream_connected") == 1
            assert exporter.value("requence_tasks_ended_total", task_name="invoice") == TASKS
            assert exporter.proc is not None
            assert exporter.proc.poll() is None
            assert exporter.stop() == 0
            log = exporter.log
    finally:
        loop.run(server.aclose())
    assert "watch-all stream unauthorized" in log
    assert "refused the bearer token (HTTP 401)" in log
    assert "process-bearer" not in log


@pytest.mark.slow
def test_process_status_while_nothing_listens() -> None:
    from exporter.requence.token import encode_token

    api = f"http://127.0.0.1:{free_port()}"
    token = encode_token("nobody-listens", api)
    with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": token}) as exporter:
        exporter.wait_for(
            lambda: (
                (exporter.value("requence_exporter_reconnects_total", reason="unreachable") or 0)
                >= 2
            ),
            what="two refused connections",
        )
        assert exporter.value("requence_exporter_stream_connected") == 0
        status = exporter.get("/status").json()
        assert status["connected"] is False
        assert status["reconnects"]["unreachable"] >= 2
        assert "ConnectError" in status["last_error"]
        assert exporter.get("/readyz").status_code == 200  # readiness never waits on Requence
        assert exporter.stop() == 0
        log = exporter.log
    assert "watch-all stream unreachable" in log
    assert "nobody-listens" not in log
