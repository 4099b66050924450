"""Hostile positions and state files against the real exporter process over loopback.

Each test reproduces an attack: a position beyond 64 bits, a huge old state file, a state file
with fields of the wrong type, a link planted where the temporary file used to be, and a state
directory that refuses writes, and a crash between checkpoints. None may stop the exporter, go
unnoticed, or count an update twice.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter.core.checkpoint import SavedState, StateFile
from exporter.simulator.scripted import Event, ScriptedServer, Send, Stall
from tests.e2e.process import ExporterProcess
from tests.e2e.rig import workload
from tests.e2e.scripts import FETCH, ev
from tests.e2e.servers import LoopThread, serve
from tests.otlp_receiver import hung_endpoint

pytestmark = pytest.mark.slow

A = "5f0c1e2a-8b3d-4c6e-9f70-00000000000a"
B = "5f0c1e2a-8b3d-4c6e-9f70-00000000000b"
HUGE = 2**70  # 1180591620717411303424: past what JSON tools and the state file hold


def _at(event: Event, position: int) -> Event:
    return Event(event.type, event.data, position)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def _server(loop: LoopThread, events: list[Event], plans: list[list[Any]]) -> ScriptedServer:
    server = serve(loop, lambda: ScriptedServer(events, plans, bearer="b"))
    assert isinstance(server, ScriptedServer)
    return server


def test_a_position_beyond_64_bits_is_skipped_and_the_state_is_saved(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    events = [
        _at(ev("taskStart", A, 0.0, "invoice"), 10),
        _at(ev("nodeStart", A, 1.0, "invoice", node=FETCH), HUGE),
        _at(ev("taskEnd", A, 2.0, "invoice"), 11),
    ]
    server = _server(loop, events, [[Send(), Stall(60)]])
    args = ["--state-file", str(state), "--checkpoint-interval", "1s"]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(11)
            assert (
                exporter.value(
                    "requence_exporter_updates_skipped_total", reason="position_out_of_range"
                )
                == 1
            )
            assert exporter.value("requence_exporter_updates_total", type="nodeStart") == 0
            assert exporter.get("/status").status_code == 200
            exporter.wait_for(state.exists, what="a checkpoint")
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    assert orjson.loads(state.read_bytes())["position"] == 11


def _task(i: int, last_seen: float, name: str) -> dict[str, Any]:
    return {
        "id": f"task-{i}",
        "name": name,
        "root": None,
        "start": last_seen,
        "incomplete": False,
        "last_seen": last_seen,
        "attempts": {"node-fetch": 1},
        "open": [["node-fetch", "service", "fetch", 1, last_seen]],
        "finished": [],
    }


def _state(tasks: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "saved_at": 1795341600.0,
        "since": "2026-11-22T09:00:00.000Z",
        "position": 5,
        "recent_ids": [],
        "tracker": {
            "version": 1,
            "latest_timestamp": 1795341600.0,
            "finished_ids": [],
            "tasks": tasks,
        },
        **top,
    }


@pytest.mark.parametrize("layout", ["one task per line", "one line"])
def test_restoring_a_large_state_file_keeps_the_most_recent_tasks_up_to_the_cap(
    loop: LoopThread, tmp_path: Path, layout: str
) -> None:
    state = tmp_path / "exporter.json"
    # Shuffled in time: the newest 100 are "recent", spread through the file.
    tasks = [
        _task(
            i,
            1795341000.0 + (i * 7919) % 20_000,
            "recent" if (i * 7919) % 20_000 >= 19_900 else "old",
        )
        for i in range(20_000)
    ]
    if layout == "one line":
        state.write_bytes(orjson.dumps(_state(tasks)))
    else:  # as the exporter writes it: read a task at a time, keeping only the newest
        saved = _state(tasks)
        StateFile(state).save(SavedState(saved["since"], 5, [], saved["tracker"]))
    server = _server(loop, [_at(ev("taskStart", A, 0.0, "invoice"), 6)], [[Send(), Stall(60)]])
    args = ["--state-file", str(state), "--max-tracked-tasks", "100"]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(6)
            samples = exporter.samples()
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    assert value("requence_exporter_tracked_tasks") == 100
    assert value("requence_tasks_in_progress", task_name="recent") == 99  # one evicted for A
    assert value("requence_tasks_in_progress", task_name="invoice") == 1
    assert value("requence_exporter_evicted_tasks_total") == 19_900 + 1
    assert "19900 tasks more than --max-tracked-tasks 100" in exporter.log


BAD_FIELDS: dict[str, Any] = {
    "a dict as a task name": _state([{**_task(1, 1795341000.0, "x"), "name": {"a": 1}}]),
    "a number as a node alias": _state(
        [{**_task(1, 1795341000.0, "x"), "open": [["n", "service", 7, 1, 1795341000.0]]}]
    ),
    "a string as a start": _state([{**_task(1, 1795341000.0, "x"), "start": "soon"}]),
    "a list as an attempt count": _state([{**_task(1, 1795341000.0, "x"), "attempts": {"n": []}}]),
    "a finished attempt without its outcome": _state(
        [{**_task(1, 1795341000.0, "x"), "finished": [["n", "service", None, 1, 1.0, 2.0]]}]
    ),
    "a position beyond 64 bits": _state([], position=None),  # HUGE, written below
    "a position as text": _state([], position="12"),
    "a number as a recent id": _state([], recent_ids=[1, 2]),
    "a number as since": _state([], since=5),
    "a list as the file": [1, 2, 3],
    "a file over 64 MiB in another layout": _state([]),
}


@pytest.mark.parametrize("problem", BAD_FIELDS)
def test_a_state_file_with_a_wrong_field_is_set_aside_and_the_stream_goes_on(
    loop: LoopThread, tmp_path: Path, problem: str
) -> None:
    state = tmp_path / "exporter.json"
    body = BAD_FIELDS[problem]
    # orjson refuses integers past 64 bits, as a hostile writer would not.
    raw = orjson.dumps(body)
    if problem == "a position beyond 64 bits":
        raw = raw.replace(b'"position":null', b'"position":%d' % HUGE)
    if problem == "a file over 64 MiB in another layout":
        raw = raw[:1] + b" " * (64 << 20) + raw[1:]  # valid JSON, but not read whole
    state.write_bytes(raw)
    events = [
        ev("taskStart", B, 0.0, "ocr"),
        ev("nodeStart", B, 1.0, "ocr", node={"id": "n", "type": "service", "alias": "scan"}),
        ev("taskEnd", B, 2.0, "ocr"),
    ]
    server = _server(loop, events, [[Send(), Stall(60)]])
    args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(3)
            assert exporter.value("requence_exporter_updates_total", type="taskEnd") == 1
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    [aside] = tmp_path.glob("exporter.json.corrupt-*")
    assert aside.read_bytes() == raw
    assert exporter.log.count("is corrupt") == 1
    assert orjson.loads(state.read_bytes())["position"] == 3


def test_links_planted_beside_the_state_file_are_not_followed(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (tmp_path / ".exporter.json.tmp").symlink_to(victim)  # the old temporary name
    (tmp_path / "exporter.json.scraped").symlink_to(victim)  # the scrape mark
    server = _server(loop, [ev("taskStart", A, 0.0, "invoice")], [[Send(), Stall(60)]])
    args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(1)
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    assert victim.read_bytes() == b"precious\n"
    assert orjson.loads(state.read_bytes())["position"] == 1
    # Only the state file, its lock, the planted links and their target: no temporary file.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".exporter.json.tmp",
        "exporter.json",
        "exporter.json.lock",
        "exporter.json.scraped",
        "victim",
    ]
    assert exporter.log.count("cannot write scrape mark") == 1


def test_failed_saves_are_counted_warned_once_and_fail_the_exit_code(
    loop: LoopThread, tmp_path: Path
) -> None:
    # A file where the state directory should be: every save fails, even as root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    state = blocker / "exporter.json"
    events = [ev("taskStart", A, 0.0, "invoice"), ev("taskEnd", A, 1.0, "invoice")]
    plans = [[Send(count=1), Stall(2.5), Send(), Stall(60)]]
    server = _server(loop, events, plans)
    args = ["--state-file", str(state), "--checkpoint-interval", "1s"]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(2)
            exporter.wait_for(
                lambda: (exporter.value("requence_exporter_state_save_failures_total") or 0) >= 2,
                what="two failed saves",
            )
            assert exporter.stop() == 1
    finally:
        loop.run(server.aclose())
    assert exporter.log.count("cannot write state file") == 1
    assert "the final state file save failed" in exporter.log


def test_after_a_crash_what_was_scraped_is_not_counted_again(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    events = workload(4)  # four tasks, positions 1-16, each spanning four positions
    plans = [[Send(6), Stall(60)], [Send(5), Stall(60)], [Send(), Stall(60)]]
    server = _server(loop, events, plans)
    args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token}
    runs = []
    try:
        with ExporterProcess(args, env) as first:
            first.wait_position(6)
            runs.append(first.samples())
            assert first.stop() == 0  # the state file now holds position 6
        with ExporterProcess(args, env) as second:
            second.wait_position(11)
            runs.append(second.samples())  # this scrape saw position 11
            assert second.proc is not None
            second.proc.kill()  # as the OOM killer would: no checkpoint past 6
            second.proc.wait(10)
        with ExporterProcess(args, env) as third:
            third.wait_position(16)
            runs.append(third.samples())
            assert third.stop() == 0
    finally:
        loop.run(server.aclose())
    assert orjson.loads(state.read_bytes())["position"] == 16
    assert server.sent[2][0] == 7  # Requence replayed everything after the checkpoint

    def total(name: str, **labels: str) -> float:
        return sum(run.get((name, frozenset(labels.items())), 0) for run in runs)

    for kind in ("taskStart", "nodeStart", "nodeEnd", "taskEnd"):
        assert total("requence_exporter_updates_total", type=kind) == 4, kind
    # task-2 started before the crash and ended after it: its duration is still measured.
    assert total("requence_task_duration_seconds_count", task_name="invoice", outcome="ended") == 4
    assert total("requence_exporter_incomplete_tasks_total") == 0
    assert "applied without counting them again" in third.log


def test_a_hung_collector_does_not_hold_the_final_state_save(
    loop: LoopThread, tmp_path: Path
) -> None:
    # On SIGTERM the state file is saved before queued spans are flushed: a collector that
    # never answers holds the flush for the export timeout (here a minute, past any grace
    # period), and a pod killed at the end of its grace period must still leave its state.
    state = tmp_path / "exporter.json"
    events = [
        _at(ev("taskStart", A, 0.0, "invoice"), 1),
        _at(ev("nodeStart", A, 0.5, "invoice", node=FETCH), 2),
        _at(ev("nodeEnd", A, 1.0, "invoice", node=FETCH), 3),
        _at(ev("taskEnd", A, 2.0, "invoice"), 4),
    ]
    server = _server(loop, events, [[Send(), Stall(120)]])
    args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
    try:
        with hung_endpoint() as collector:
            env = {
                "REQUENCE_ACCESS_TOKEN": server.access_token,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector}/v1/traces",
                "OTEL_BSP_SCHEDULE_DELAY": "3600000",  # spans stay queued until the stop
                "OTEL_BSP_EXPORT_TIMEOUT": "60000",
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "60000",
            }
            with ExporterProcess(args, env) as exporter:
                exporter.wait_position(4)
                assert not state.exists()
                assert exporter.proc is not None
                exporter.proc.send_signal(signal.SIGTERM)
                exporter.wait_for(state.exists, what="the final state save", timeout=30.0)
                # Saved while the flush still waits on the collector.
                assert exporter.proc.poll() is None
                assert orjson.loads(state.read_bytes())["position"] == 4
    finally:
        loop.run(server.aclose())
