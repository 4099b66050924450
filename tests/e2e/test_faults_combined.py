"""Through 503s, drops mid-event and duplicates on resume, and through a hostile upstream (huge
ids, a compression bomb, dribbling): the metrics of a clean run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import pytest

from exporter.simulator.scripted import (
    Action,
    Bomb,
    Dribble,
    DropMidEvent,
    Duplicate,
    Gzip,
    Raw,
    Respond,
    ScriptedServer,
    Send,
)
from tests.e2e.process import ExporterProcess
from tests.e2e.scripts import LAST, SCRIPT
from tests.e2e.servers import LoopThread, serve

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("each_reader")]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
# Self metrics that describe the connection itself, which faults rightly change.
CONNECTION = (
    "requence_exporter_reconnects_total",
    "requence_exporter_update_lag_seconds",
    "requence_exporter_updates_skipped_total",
    "process_",  # the process's own memory, CPU and start time differ between any two runs
    "requence_exporter_event_loop_lag_seconds",  # so do how long it ran and how late its loop
)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def run(
    loop: LoopThread, plans: Sequence[Sequence[Action]], args: Sequence[str] = ()
) -> tuple[Samples, ScriptedServer]:
    server = serve(loop, lambda: ScriptedServer(SCRIPT, plans, bearer="b"))
    assert isinstance(server, ScriptedServer)
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(LAST, timeout=60)
            samples = exporter.samples()
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    return samples, server


def by_reason(samples: Samples, name: str) -> dict[str, float]:
    return {dict(k[1])["reason"]: v for k, v in samples.items() if k[0] == name}


def comparable(samples: Samples) -> Samples:
    return {k: v for k, v in samples.items() if not k[0].startswith(CONNECTION)}


def test_faults_end_with_the_metrics_of_a_clean_run(loop: LoopThread) -> None:
    clean, _ = run(loop, [[Send(per_write=None)]])
    faulty, server = run(
        loop,
        [
            [Send(count=5), DropMidEvent()],
            [Respond(503)],
            [Respond(502)],
            [Duplicate(), Send(count=6), DropMidEvent()],
            [Respond(504)],
            [Duplicate(), Send()],
        ],
    )
    assert comparable(faulty) == comparable(clean)
    reasons = by_reason(faulty, "requence_exporter_reconnects_total")
    assert reasons["unreachable"] == 3
    assert reasons["dropped"] == 2
    skipped = by_reason(faulty, "requence_exporter_updates_skipped_total")
    assert skipped["duplicate_position"] == 2
    assert skipped["malformed_json"] == 1
    # Every reconnect resumed after the last position processed, with the same `since`.
    bodies = [orjson.loads(r.body) for r in server.requests if r.path == "/task/watch-all"]
    assert [b.get("lastPosition") for b in bodies] == [None, 5, 5, 5, 11, 11]
    assert len({b["since"] for b in bodies}) == 1


HUGE_ID = (
    b"event: taskStart\nid: 1180591620717411303424\n"
    b'data: {"task_id": "hostile", "timestamp": "2026-11-22T10:00:00Z", "name": "invoice"}\n\n'
)


def test_a_hostile_upstream_ends_with_the_metrics_of_a_clean_run(loop: LoopThread) -> None:
    clean, _ = run(loop, [[Send(per_write=None)]])
    hostile, server = run(
        loop,
        [
            [Send(count=4), Raw(HUGE_ID), Send(count=3), Dribble(b"event: nodeEnd\ndata: {", 0.2)],
            [Gzip(), Duplicate(), Send(count=5), Bomb(32 * 1024 * 1024), DropMidEvent()],
            [Gzip(), Send(per_write=None)],
        ],
        ["--read-timeout", "1s"],
    )
    assert comparable(hostile) == comparable(clean)
    reasons = by_reason(hostile, "requence_exporter_reconnects_total")
    # The dribble times out; the bomb's connection drops, or times out first: blank lines are
    # no progress.
    assert reasons["timeout"] >= 1
    assert reasons["timeout"] + reasons["dropped"] == 2
    skipped = by_reason(hostile, "requence_exporter_updates_skipped_total")
    assert skipped["position_out_of_range"] == 1
    assert skipped["duplicate_position"] == 1
    bodies = [orjson.loads(r.body) for r in server.requests if r.path == "/task/watch-all"]
    assert [b.get("lastPosition") for b in bodies] == [None, 7, 12]
