"""Hostile values in the stream and beside the state file, against the real exporter process.

Times that parse but cannot be rendered, times from a clock far ahead, ids that forge log
lines, bidi overrides in names, a FIFO planted as the scrape mark, a crash after a server reset,
and a second exporter on the same state file: none may stop the exporter, expire its tasks,
reach a log line or the status page raw, or lose a count.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from exporter.simulator.protocol import sse_event
from exporter.simulator.scripted import Event, Raw, ScriptedServer, Send, Stall
from tests.e2e.process import ExporterProcess
from tests.e2e.scripts import FETCH, ev
from tests.e2e.servers import LoopThread, serve

pytestmark = pytest.mark.slow

A = "5f0c1e2a-8b3d-4c6e-9f70-0000000000a1"
B = "5f0c1e2a-8b3d-4c6e-9f70-0000000000b2"
FORGED_ID = "t-9\n2026-12-06 00:00:00,000 ERROR   exporter.app: forged\x1b[2J"
BIDI_NAME = "invoice\u202egpj.exe"
# A line of the exporter's own text log starts with the time of the record.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def _server(loop: LoopThread, events: list[Event], plans: list[list[object]]) -> ScriptedServer:
    server = serve(loop, lambda: ScriptedServer(events, plans, bearer="b"))  # type: ignore[arg-type]
    assert isinstance(server, ScriptedServer)
    return server


def _with_time(event: Event, timestamp: object) -> Event:
    assert isinstance(event.data, dict)
    return Event(event.type, {**event.data, "timestamp": timestamp})


HOSTILE = [
    ev("taskStart", A, 0.0, "invoice"),
    ev("nodeStart", A, 1.0, "invoice", node=FETCH),
    # Each parses, none can be rendered: each once ended the exporter (--log-failures) or
    # answered / and /failures with 500 until 200 newer failures pushed it out.
    _with_time(ev("taskError", "t-2", 2.0, "ocr", reason="x"), "9999-12-31T23:59:59-14:00"),
    _with_time(ev("taskAborted", "t-3", 2.0, "ocr", reason="x"), "0001-01-01T00:00:00+14:00"),
    # Renderable, but from a clock 7,000 years ahead: it once expired every task in flight and
    # moved the TTL sweep to year 9999.
    _with_time(ev("nodeError", "t-4", 2.0, "ocr", node=FETCH, error="x"), 253402300799000),
    ev("taskStart", FORGED_ID, 3.0, BIDI_NAME),
    ev("taskError", FORGED_ID, 4.0, BIDI_NAME, reason="bad \u202escan\x1b[31m"),
    Event("task\x1bPaused", {"task_id": A, "timestamp": "2026-11-22T10:00:05Z"}),
    # 200 s later, past the TTL of A: the sweep runs on it.
    _with_time(ev("taskStart", B, 0.0, "invoice"), "2026-11-22T10:03:20Z"),
]


def test_unrenderable_and_future_times_neither_stop_the_exporter_nor_expire_its_tasks(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    server = _server(loop, HOSTILE, [[Send(), Stall(60)]])
    args = ["--state-file", str(state), "--log-failures", "--task-ttl", "60s"]
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token}
    try:
        with ExporterProcess(args, env) as exporter:
            exporter.wait_position(len(HOSTILE))
            assert (
                exporter.value("requence_exporter_updates_skipped_total", reason="bad_timestamp")
                == 2
            )
            assert (
                exporter.value("requence_exporter_updates_skipped_total", reason="future_timestamp")
                == 1
            )
            # A was silent past the TTL when B came: expired by the sweep, and only A.
            assert exporter.value("requence_exporter_evicted_tasks_total") == 1
            assert exporter.value("requence_exporter_tracked_tasks") == 1
            page = exporter.get("/")
            failures = exporter.get("/failures")
            assert (page.status_code, failures.status_code) == (200, 200)
            assert [f["task_name"] for f in failures.json()["failures"]] == [BIDI_NAME]
            assert "\u202e" not in page.text
            assert "invoice\\u202egpj.exe" in page.text
            assert exporter.proc is not None
            assert exporter.proc.poll() is None
            assert exporter.stop() == 0
        # The state file holds nothing the next start could trip on again.
        with ExporterProcess(args, env) as again:
            again.wait_position(len(HOSTILE))
            assert again.get("/").status_code == 200
            assert again.stop() == 0
    finally:
        loop.run(server.aclose())
    log = exporter.log + again.log
    assert "Traceback" not in log
    assert not any(c in log for c in "\x1b\u202e")
    assert all(LOG_LINE.match(line) for line in log.splitlines()), log  # none forged
    assert "t-9\\x0a2026-12-06 00:00:00,000 ERROR" in exporter.log  # the failure line
    assert orjson.loads(state.read_bytes())["position"] == len(HOSTILE)


def test_a_fifo_planted_as_the_scrape_mark_blocks_nothing(loop: LoopThread, tmp_path: Path) -> None:
    state = tmp_path / "exporter.json"
    os.mkfifo(tmp_path / "exporter.json.scraped")
    server = _server(loop, [ev("taskStart", A, 0.0, "invoice")], [[Send(), Stall(60)]])
    args = ["--state-file", str(state), "--checkpoint-interval", "1s"]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(1)  # scrapes, each of which marks
            assert exporter.get("/healthz").status_code == 200
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    assert exporter.log.count("cannot write scrape mark") == 1  # refused once, not blocked


def _raw(events: list[tuple[str, int, dict[str, object]]]) -> Raw:
    return Raw(b"".join(sse_event(kind, pos, orjson.dumps(data)) for kind, pos, data in events))


def _updates(first: int, last: int, tag: str) -> list[tuple[str, int, dict[str, object]]]:
    return [
        (
            "taskStart",
            position,
            {
                "task_id": f"{tag}-{position}",
                "timestamp": f"2026-11-22T10:00:{position % 60:02d}Z",
                "updateId": f"{tag}-u{position}",
                "name": "invoice",
            },
        )
        for position in range(first, last + 1)
    ]


def _saved_position(state: Path) -> int | None:
    try:
        return int(orjson.loads(state.read_bytes())["position"])
    except (OSError, orjson.JSONDecodeError):
        return None


def test_after_a_server_reset_a_crash_before_the_next_scrape_loses_no_count(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    args = ["--state-file", str(state), "--checkpoint-interval", "1s"]
    servers = [
        # Old numbering: a scrape sees position 30 (the mark).
        _server(loop, [], [[_raw(_updates(1, 30, "old")), Stall(60)]]),
        # The server's positions restart (new ids): counted from 1, checkpointed, then killed
        # before any scrape.
        _server(loop, [], [[_raw(_updates(1, 5, "reset")), Stall(60)]]),
        # After the crash: positions 6 to 20 of the new numbering, never counted before.
        _server(loop, [], [[_raw(_updates(6, 20, "reset")), Stall(60)]]),
    ]
    try:
        env = {"REQUENCE_ACCESS_TOKEN": servers[0].access_token}
        with ExporterProcess(args, env) as first:
            first.wait_position(30)
            assert first.stop() == 0
        env = {"REQUENCE_ACCESS_TOKEN": servers[1].access_token}
        with ExporterProcess(args, env) as second:
            deadline = time.monotonic() + 20
            while _saved_position(state) != 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _saved_position(state) == 5, second.log
            assert second.proc is not None
            second.proc.kill()  # as the OOM killer would, before any scrape saw position 5
            second.proc.wait(10)
        env = {"REQUENCE_ACCESS_TOKEN": servers[2].access_token}
        with ExporterProcess(args, env) as third:
            third.wait_position(20)
            counted = third.value("requence_exporter_updates_total", type="taskStart")
            assert third.stop() == 0
    finally:
        for server in servers:
            loop.run(server.aclose())
    assert counted == 15  # 6 to 20: none taken for updates a scrape had seen
    assert "applied without counting them again" not in third.log


def test_a_second_exporter_on_the_same_state_file_is_refused(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    server = _server(loop, [ev("taskStart", A, 0.0, "invoice")], [[Send(), Stall(60)]])
    args = ["--state-file", str(state)]
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token}
    try:
        with ExporterProcess(args, env) as first:
            first.wait_position(1)
            with ExporterProcess(args, env) as second:
                assert second.proc is not None
                assert second.proc.wait(20) == 2
            assert first.stop() == 0
    finally:
        loop.run(server.aclose())
    assert f"is in use by another exporter (process {first.proc.pid}" in second.log  # type: ignore[union-attr]
