"""Hostile upstreams over loopback: dribbling, lenient ids, compression bombs, huge events.

The in-process cases drive the real `WatchStream` and `Pipeline` against a `ScriptedServer`; the
compression bomb runs the real exporter process, whose peak memory the kernel reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from exporter.simulator.scripted import (
    Action,
    Bomb,
    Dribble,
    Event,
    Gzip,
    Raw,
    RawHead,
    ScriptedServer,
    Send,
    Stall,
)
from tests.e2e.process import ExporterProcess
from tests.e2e.rig import TASKS, Rig, assert_counted_once, update, workload
from tests.e2e.servers import LoopThread, serve

# Every test here runs through each stream reader.
pytestmark = pytest.mark.usefixtures("each_reader")

SCRIPT = workload()
LAST = len(SCRIPT)


async def started(events: list[Event], plans: list[list[Action]]) -> ScriptedServer:
    server = ScriptedServer(events, plans, bearer="hostile-bearer")
    await server.start("127.0.0.1", 0)
    return server


async def test_a_dribbling_upstream_times_out_and_resumes() -> None:
    # One byte every 50 ms never completes an event: bytes arrive, progress does not.
    dribble = Dribble(b"event: taskStart\nid: 99\ndata: {" + b" " * 400, 0.05)
    server = await started(SCRIPT, [[Send(5), dribble], [Send(), Stall(60)]])
    async with server, Rig(server, read_timeout=0.5) as rig:
        await rig.wait_position(LAST)
        assert rig.reconnects()["timeout"] == 1
        assert_counted_once(rig)


async def test_keep_alive_comments_count_as_progress() -> None:
    # A comment every 100 ms, for longer than the read timeout: the connection is kept.
    comments = Raw(b": keep-alive\n\n")
    plan = [Send(5), *([comments, Stall(0.1)] * 12), Send(), Stall(60)]
    server = await started(SCRIPT, [plan])
    async with server, Rig(server, read_timeout=0.5) as rig:
        await rig.wait_position(LAST)
        assert rig.reconnects()["timeout"] == 0
        assert server.connections == 1


LENIENT_IDS = ["+3", "1_0", " 4", "4 ", "\u0663", "0x5", "-2", "3.0", "\u00b2"]


async def test_ids_other_than_ascii_digits_are_not_positions() -> None:
    odd = [
        Raw(
            b"event: taskStart\nid: %b\ndata: %b\n\n"
            % (
                raw_id.encode(),
                orjson.dumps(update("taskStart", f"odd-{i}", 50.0, name="odd")),
            )
        )
        for i, raw_id in enumerate(LENIENT_IDS)
    ]
    server = await started(SCRIPT, [[Send(8), *odd, Send(), Stall(60)]])
    async with server, Rig(server) as rig:
        await rig.wait_position(LAST)
        # Applied without a position, as any event without a usable id: no false server reset.
        assert rig.status.position_resets == 0
        assert rig.value("requence_tasks_started_total", task_name="odd") == len(LENIENT_IDS)
        assert rig.skipped()["duplicate_position"] == 0


async def test_events_near_the_size_limit_are_decoded_whole() -> None:
    big = "x" * (15 * 1024 * 1024)
    events = [
        Event("taskStart", update("taskStart", "big", 0.0, name="big", input={"blob": big})),
        *SCRIPT,
        Event("taskEnd", update("taskEnd", "big", 60.0, name="big", result={"blob": big})),
    ]
    server = await started(events, [[Send(chunk_size=65536), Stall(60)]])
    async with server, Rig(server) as rig:
        await rig.wait_position(len(events), within=60)
        assert rig.value("requence_tasks_ended_total", task_name="big") == 1
        assert rig.skipped()["oversized"] == 0


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.slow
def test_a_compression_bomb_neither_exhausts_memory_nor_stops_the_stream(
    loop: LoopThread,
) -> None:
    # 256 MiB of blank lines, about 256 KiB on the wire; then the rest of the script.
    plans = [[Gzip(), Send(6), Bomb(256 * 1024 * 1024), Send(), Stall(60)]]
    server = serve(loop, lambda: ScriptedServer(SCRIPT, plans, bearer="b"))
    assert isinstance(server, ScriptedServer)
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(LAST, timeout=120)
            assert exporter.proc is not None
            peak = _peak_rss_bytes(exporter.proc.pid)
            assert exporter.value("requence_tasks_ended_total", task_name="invoice") == TASKS
            assert exporter.value("requence_exporter_reconnects_total", reason="dropped") == 0
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    assert server.connections == 1
    assert peak < 160 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB"


async def test_a_dribbling_response_head_times_out_and_resumes() -> None:
    # A status line, then one header byte every 50 ms: no single read ever times out, but the
    # head is not in within the read timeout.
    head = RawHead(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000, 0.05)
    server = await started(SCRIPT, [[head], [Send(), Stall(60)]])
    async with server, Rig(server, read_timeout=0.5) as rig:
        await server.wait_for_connections(1)
        # The first attempt's moment: the dribbled head moves nothing while it lasts.
        attempt_at = rig.stream.alive_at
        await rig.wait_for(lambda: rig.reconnects()["timeout"] == 1, what="the head to time out")
        assert "no complete response head" in (rig.status.last_error or "")
        await rig.wait_position(LAST)
        assert_counted_once(rig)
        # The loop went round again: liveness (/healthz) sees it moving, not stuck.
        assert rig.stream.alive_at > attempt_at
