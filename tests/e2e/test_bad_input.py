"""Bad updates over loopback through the real stream: each is skipped and counted, the rest exact.

Every bad event is written into the live event stream between valid updates of one task; the
task's updates after it must still be counted exactly once and the skip counted by its reason.
"""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from exporter.simulator.protocol import sse_event
from exporter.simulator.scripted import Action, Event, Raw, ScriptedServer, Send, Stall
from tests.e2e.process import ExporterProcess
from tests.e2e.rig import NODE, Rig, assert_counted_once, at, update, workload
from tests.e2e.servers import LoopThread, serve

MiB = 1024 * 1024


def spaced(events: list[Event], gap: int) -> list[Event]:
    """The events at positions gap, 2*gap, ...: room for bad events between them."""
    return [Event(e.type, e.data, gap * (i + 1)) for i, e in enumerate(events)]


def raw(kind: str, position: int, data: bytes | dict[str, Any]) -> bytes:
    """One event exactly as it goes on the wire (data may be any bytes)."""
    return sse_event(kind, position, data if isinstance(data, bytes) else orjson.dumps(data))


def good(kind: str = "nodeUpdate", **changes: Any) -> dict[str, Any]:
    """A valid update of another task, to be broken by `changes` (None removes a field)."""
    data = update(kind, "task-other", 2.0, node=NODE, data={"x": 1})
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# (id, event type, data, the skip reason)
BAD: list[tuple[str, str, bytes | dict[str, Any], str]] = [
    ("truncated-json", "nodeUpdate", b'{"task_id": "t", "timestamp": ', "malformed_json"),
    ("trailing-garbage", "nodeUpdate", b'{"task_id": "t"} and more', "malformed_json"),
    ("empty-data", "nodeUpdate", b"", "malformed_json"),
    ("nan", "nodeUpdate", b'{"task_id": "t", "timestamp": NaN}', "malformed_json"),
    ("array", "nodeUpdate", b"[1, 2, 3]", "not_object"),
    ("number", "taskStart", b"42", "not_object"),
    ("string", "taskStart", b'"taskStart"', "not_object"),
    ("null", "taskEnd", b"null", "not_object"),
    ("unknown-type", "taskPaused", good(), "unknown_type"),
    ("no-type-at-all", "", good(), "unknown_type"),
    ("type-in-wrong-case", "NODEUPDATE", good(), "unknown_type"),
    ("no-task-id", "nodeUpdate", good(task_id=None), "missing_task_id"),
    ("empty-task-id", "nodeUpdate", good(task_id=""), "missing_task_id"),
    ("numeric-task-id", "nodeUpdate", good(task_id=42), "bad_field"),
    ("object-task-id", "nodeUpdate", good(task_id={"id": "t"}), "bad_field"),
    ("numeric-name", "nodeUpdate", good(name=7), "bad_field"),
    ("list-root", "nodeUpdate", good(rootTaskId=["r"]), "bad_field"),
    ("no-node", "nodeStart", good("nodeStart", node=None), "bad_field"),
    ("string-node", "nodeEnd", good("nodeEnd", node="fetch"), "bad_field"),
    ("numeric-node-id", "nodeEnd", good("nodeEnd", node={"id": 5, "type": "logic"}), "bad_field"),
    ("numeric-alias", "nodeEnd", good(node={"id": "n", "type": "logic", "alias": 3}), "bad_field"),
    ("no-timestamp", "nodeUpdate", good(timestamp=None), "bad_timestamp"),
    ("word-timestamp", "nodeUpdate", good(timestamp="yesterday"), "bad_timestamp"),
    ("impossible-date", "nodeUpdate", good(timestamp="2026-13-45T25:61:00Z"), "bad_timestamp"),
    ("bool-timestamp", "nodeUpdate", good(timestamp=True), "bad_timestamp"),
    ("huge-timestamp", "nodeUpdate", good(timestamp=1e30), "bad_timestamp"),
    ("negative-timestamp", "nodeUpdate", good(timestamp=-5), "bad_timestamp"),
    ("object-timestamp", "nodeUpdate", good(timestamp={"ms": 1}), "bad_timestamp"),
    (
        "invalid-utf8-in-data",
        "nodeUpdate",
        b'{"task_id": "t\xff\xfe", "timestamp": "2026-11-22T10:00:02Z"}',
        "invalid_utf8",
    ),
    ("invalid-utf8-lone-byte", "nodeUpdate", b"\xc3", "invalid_utf8"),
]


@pytest.mark.parametrize(
    ("kind", "data", "reason"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
async def test_one_bad_update_is_skipped_and_the_stream_goes_on(
    kind: str, data: bytes | dict[str, Any], reason: str
) -> None:
    events = spaced(workload(1), 2)  # positions 2, 4, 6, 8
    plan: list[Action] = [Send(1), Raw(raw(kind, 3, data)), Send()]
    async with ScriptedServer(events, [plan]) as server:
        await server.start()
        async with Rig(server) as rig:
            await rig.wait_position(8)
            assert sum(rig.reconnects().values()) == 0
            assert rig.status.connected
            assert_counted_once(rig, tasks=1, **{reason: 1})


async def test_invalid_utf8_in_the_event_type_is_an_unknown_type() -> None:
    events = spaced(workload(1), 2)
    bad = b"event: node\xffUpdate\nid: 3\ndata: " + orjson.dumps(good()) + b"\n\n"
    async with ScriptedServer(events, [[Send(1), Raw(bad), Send()]]) as server:
        await server.start()
        async with Rig(server) as rig:
            await rig.wait_position(8)
            assert_counted_once(rig, tasks=1, unknown_type=1)


async def test_an_end_before_its_start_is_clamped_to_zero_and_counted() -> None:
    node = {"id": "node-fetch", "type": "service", "alias": "fetch"}
    events = [
        Event("taskStart", update("taskStart", "t", 10.0)),
        Event("nodeStart", update("nodeStart", "t", 12.0, node=node)),
        Event("nodeEnd", update("nodeEnd", "t", 11.0, node=node)),  # a second before its start
        Event("taskEnd", update("taskEnd", "t", 9.5, result=None)),  # before the task's start
    ]
    async with ScriptedServer(events) as server:
        await server.start()
        async with Rig(server) as rig:
            await rig.wait_position(4)
            assert rig.value("requence_exporter_negative_durations_total") == 2
            task = {"task_name": "invoice", "outcome": "ended"}
            assert rig.value("requence_task_duration_seconds_count", **task) == 1
            assert rig.value("requence_task_duration_seconds_sum", **task) == 0
            node_labels = {**task, "node": "fetch", "node_type": "service"}
            assert rig.value("requence_node_duration_seconds_count", **node_labels) == 1
            assert rig.value("requence_node_duration_seconds_sum", **node_labels) == 0
            assert rig.value("requence_tasks_ended_total", task_name="invoice") == 1
            assert sum(rig.skipped().values()) == 0


async def test_an_oversized_event_is_skipped_without_holding_it_in_memory() -> None:
    limit = 4096
    chunk = b"x" * (64 * 1024)
    chunks = 128  # an 8 MiB event
    head = b'event: nodeUpdate\nid: 5\ndata: {"task_id": "task-0", "timestamp": "%b", "data": "' % (
        at(2.0).encode()
    )
    tail = b'"}\n\n'
    events = spaced(workload(2), 2)  # positions 2..16; the big event is position 5
    # The pause lets the connection's set-up allocations finish before the peak is measured.
    plan: list[Action] = [Send(2), Stall(0.3), Raw(head), *[Raw(chunk)] * chunks, Raw(tail), Send()]
    tracemalloc.start()
    try:
        async with ScriptedServer(events, [plan]) as server:
            await server.start()
            async with Rig(server, max_event_bytes=limit) as rig:
                await rig.wait_position(4)
                tracemalloc.reset_peak()
                before, _ = tracemalloc.get_traced_memory()
                await rig.wait_position(16)
                _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The event streamed by in 64 KiB reads and none of it was kept: far less than its size was
    # ever allocated at once (the server's copy of it was made before tracing began).
    grew = peak - before
    assert grew < 2 * MiB, f"memory grew by {grew} bytes for a {chunks * len(chunk)}-byte event"
    assert rig.status.position == 16
    assert sum(rig.reconnects().values()) == 0
    assert_counted_once(rig, tasks=2, oversized=1)


def mixed(tasks: int, bad_per_gap: int) -> tuple[list[Event], list[Action], dict[str, int]]:
    """`tasks` valid tasks with `bad_per_gap` bad events after each update; the skip counts."""
    gap = bad_per_gap + 1
    events = spaced(workload(tasks), gap)
    plan: list[Action] = []
    expected: dict[str, int] = {}
    n = 0
    for event in events:
        plan.append(Send(1))
        assert event.position is not None
        for k in range(1, gap):
            _, kind, data, reason = BAD[n % len(BAD)]
            n += 1
            plan.append(Raw(raw(kind, event.position + k, data)))
            expected[reason] = expected.get(reason, 0) + 1
    return events, plan, expected


async def test_fifty_bad_updates_log_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    events, plan, expected = mixed(5, 3)  # 20 valid updates, 60 bad ones
    assert sum(expected.values()) >= 50
    last = events[-1].position
    assert last is not None
    with caplog.at_level(logging.WARNING, logger="exporter.requence.pipeline"):
        async with ScriptedServer(events, [plan]) as server:
            await server.start()
            async with Rig(server) as rig:
                await rig.wait_position(last + 3)
                assert_counted_once(rig, tasks=5, **expected)
    warnings = [r for r in caplog.records if r.name == "exporter.requence.pipeline"]
    assert 1 <= len(warnings) <= 3, [r.getMessage() for r in warnings]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.mark.slow
def test_process_logs_bad_updates_rate_limited(loop: LoopThread) -> None:
    events, plan, expected = mixed(5, 3)
    last = events[-1].position
    assert last is not None
    server = serve(loop, lambda: ScriptedServer(events, [plan], bearer="bad-input"))
    assert isinstance(server, ScriptedServer)
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(last + 3)
            for reason, n in expected.items():
                assert (
                    exporter.value("requence_exporter_updates_skipped_total", reason=reason) == n
                ), reason
            assert exporter.value("requence_tasks_ended_total", task_name="invoice") == 5
            assert exporter.value("requence_exporter_stream_connected") == 1
            assert exporter.stop() == 0
            log = exporter.log
    finally:
        loop.run(server.aclose())
    skipped_lines = [line for line in log.splitlines() if "skipped update" in line]
    assert 1 <= len(skipped_lines) <= 3, skipped_lines
    assert "Traceback" not in log
