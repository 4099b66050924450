"""SIGTERM mid-stream, then a restart from the state file: nothing lost, nothing doubled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from exporter.simulator.scripted import ScriptedServer, Send, Stall
from tests.e2e.process import ExporterProcess
from tests.e2e.scripts import FETCH, SCAN, ev
from tests.e2e.servers import LoopThread, serve

A = "5f0c1e2a-8b3d-4c6e-9f70-000000000001"
B = "5f0c1e2a-8b3d-4c6e-9f70-000000000002"
CHECK = {"id": "node-check", "type": "logic", "alias": "check"}
BEFORE = [
    ev("taskStart", A, 0.0, "invoice"),
    ev("nodeStart", A, 1.0, "invoice", node=FETCH),
    ev("taskStart", B, 1.5, "ocr"),
    ev("nodeEnd", A, 2.0, "invoice", node=FETCH),
    ev("nodeStart", A, 3.0, "invoice", node=CHECK),  # open across the restart
    ev("nodeStart", B, 3.5, "ocr", node=SCAN),  # open across the restart
]
AFTER = [
    ev("nodeEnd", A, 5.0, "invoice", node=CHECK),
    ev("nodeError", B, 6.0, "ocr", node=SCAN, error="unreadable"),
    ev("taskError", B, 7.0, "ocr", reason="scan failed"),
    ev("taskEnd", A, 9.0, "invoice"),
]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.mark.slow
def test_restart_resumes_after_the_last_position_and_times_tasks_across_it(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "exporter.json"
    plans = [[Send(count=len(BEFORE)), Stall(60)], [Send()]]
    server = serve(loop, lambda: ScriptedServer([*BEFORE, *AFTER], plans, bearer="b"))
    assert isinstance(server, ScriptedServer)
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token}
    args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
    try:
        with ExporterProcess(args, env) as first:
            first.wait_position(len(BEFORE))
            before = first.samples()
            assert first.stop() == 0  # SIGTERM while connected and waiting for more
        saved = orjson.loads(state.read_bytes())
        assert saved["position"] == len(BEFORE)
        assert sorted(t["id"] for t in saved["tracker"]["tasks"]) == [A, B]

        with ExporterProcess(args, env) as second:
            second.wait_position(len(BEFORE) + len(AFTER))
            after = second.samples()
            assert second.stop() == 0
    finally:
        loop.run(server.aclose())

    first_body, second_body = (
        orjson.loads(r.body) for r in server.requests if r.path == "/task/watch-all"
    )
    assert "lastPosition" not in first_body
    assert second_body == {"since": first_body["since"], "lastPosition": len(BEFORE)}
    assert server.sent == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10]]

    def value(
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
    ) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    # Durations that span the restart are exact, and no task was taken for incomplete.
    assert (
        value(after, "requence_task_duration_seconds_sum", task_name="invoice", outcome="ended")
        == 9.0
    )
    assert (
        value(after, "requence_task_duration_seconds_sum", task_name="ocr", outcome="errored")
        == 5.5
    )
    assert (
        value(
            after,
            "requence_node_duration_seconds_sum",
            task_name="invoice",
            node="check",
            node_type="logic",
            outcome="ended",
        )
        == 2.0
    )
    assert (
        value(
            after,
            "requence_node_duration_seconds_sum",
            task_name="ocr",
            node="scan",
            node_type="service",
            outcome="errored",
        )
        == 2.5
    )
    assert value(after, "requence_exporter_incomplete_tasks_total") == 0
    assert value(after, "requence_exporter_tracked_tasks") == 0
    # Each update counted exactly once across the two processes.
    for kind, total in {
        "taskStart": 2,
        "nodeStart": 3,
        "nodeEnd": 2,
        "nodeError": 1,
        "taskError": 1,
        "taskEnd": 1,
    }.items():
        counted = sum(
            value(s, "requence_exporter_updates_total", type=kind) or 0 for s in (before, after)
        )
        assert counted == total, kind
    assert value(before, "requence_tasks_in_progress", task_name="invoice") == 1
    assert value(after, "requence_exporter_updates_skipped_total", reason="duplicate_position") == 0


def test_a_corrupt_state_file_is_set_aside_with_one_warning(
    loop: LoopThread, tmp_path: Path
) -> None:
    state = tmp_path / "exporter.json"
    state.write_text('{"version": 1, "since": ')
    server = serve(loop, lambda: ScriptedServer(BEFORE, bearer="b"))
    assert isinstance(server, ScriptedServer)
    try:
        with ExporterProcess(
            ["--state-file", str(state)], {"REQUENCE_ACCESS_TOKEN": server.access_token}
        ) as exporter:
            exporter.wait_position(len(BEFORE))
            assert exporter.get("/readyz").status_code == 200
            assert exporter.stop() == 0
            log = exporter.log
    finally:
        loop.run(server.aclose())
    assert log.count("is corrupt") == 1
    assert [p.name.split(".corrupt-")[0] for p in tmp_path.glob("*.corrupt-*")] == ["exporter.json"]
    assert orjson.loads(state.read_bytes())["position"] == len(BEFORE)


@pytest.mark.slow
def test_the_last_update_time_is_absent_until_known_and_survives_a_restart(
    loop: LoopThread, tmp_path: Path
) -> None:
    """No made-up 0 (an update 57 years old) before the first update, nor after a restart."""
    state = tmp_path / "exporter.json"
    # First connection: silence, then the updates; after the restart nothing new arrives.
    plans = [[Stall(2), Send(count=len(BEFORE)), Stall(60)], [Stall(60)]]
    server = serve(loop, lambda: ScriptedServer(BEFORE, plans, bearer="b"))
    assert isinstance(server, ScriptedServer)
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token}
    args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
    name = "requence_exporter_last_update_timestamp_seconds"
    try:
        with ExporterProcess(args, env) as first:
            first.wait_for(
                lambda: first.value("requence_exporter_stream_connected") == 1,
                what="the first connection",
            )
            assert first.value(name) is None
            first.wait_position(len(BEFORE))
            last = first.value(name)
            assert first.stop() == 0
        with ExporterProcess(args, env) as second:
            second.wait_for(
                lambda: second.value("requence_exporter_stream_connected") == 1,
                what="the second connection",
            )
            restored = second.value(name)
            assert second.stop() == 0
    finally:
        loop.run(server.aclose())
    data = BEFORE[-1].data
    assert not isinstance(data, bytes)
    assert last == datetime.fromisoformat(data["timestamp"]).timestamp()
    assert restored == last
