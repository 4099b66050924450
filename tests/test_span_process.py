"""The span process behind the trace sink: dying, holding the stream back, flushing on stop,
losing no more than a task that cannot be encoded.

Every test runs the real span process and checks what reaches a real OTLP endpoint.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.metrics.store import Metrics
from tests.otlp_receiver import http_receiver, wait_until
from tests.trace_updates import Script, simple_tasks, sink_for


def samples(metrics: Metrics) -> dict[str, float]:
    """Every unlabelled sample, plus the ended tasks of `bulk`, from a real render."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render()):
        for s in family.samples:
            if not s.labels or s.labels == {"task_name": "bulk"}:
                out[s.name] = s.value
    return out


@pytest.mark.slow
def test_a_killed_span_process_costs_its_spans_and_metrics_go_on() -> None:
    # Each export waits 2 s at the receiver: the first tasks are still in the span process
    # when it is killed.
    with http_receiver(delay=2.0) as (url, received):
        sink = sink_for(url, schedule_delay=0.0, timeout=10.0)
        metrics = Metrics(status=StreamStatus(), span_stats=lambda: (sink.exported, sink.dropped))
        tracker = Tracker(observers=[metrics, sink])
        first = sink.pid
        assert first is not None
        for update in simple_tasks(5):
            tracker.apply(update)
        assert wait_until(lambda: sink.stats()["queued"] == 10, timeout=10)
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: sink.stats()["queued"] == 0, timeout=10)
        assert sink.stats()["dropped"] == 10  # all of them were still being exported
        # The stream goes on while no span process runs: metrics count every task.
        for update in simple_tasks(5):
            tracker.apply(update)
        assert samples(metrics)["requence_tasks_ended_total"] == 10
        # A new span process takes over and exports what comes next.
        assert wait_until(lambda: sink.pid not in (None, first), timeout=20)
        for update in simple_tasks(3):
            tracker.apply(update)
        sink.shutdown(timeout=30.0)
        arrived = len(received.snapshot())
    stats = sink.stats()
    assert stats["exported"] == arrived == 6
    assert stats["exported"] + stats["dropped"] == 26
    assert stats["queued"] == 0
    after = samples(metrics)
    assert after["requence_tasks_ended_total"] == 13
    assert after["requence_exporter_spans_exported_total"] == 6
    assert after["requence_exporter_spans_dropped_total"] == 20


@pytest.mark.slow
def test_a_stalled_backend_holds_the_stream_back_once_then_drops_and_counts() -> None:
    # The receiver takes longer than the blocking bound: the first task is exported, the
    # second waits out the bound and is dropped, the rest are dropped at once, without
    # waiting again, because no export succeeded since.
    with http_receiver(delay=3.0) as (url, received):
        sink = sink_for(
            url,
            schedule_delay=0.0,
            max_queue_size=2,
            max_export_batch_size=2,
            block_timeout=0.3,
            timeout=10.0,
        )
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(10):
            tracker.apply(update)
        held = sink.stats()
        sink.shutdown(timeout=30.0)
        arrived = len(received.snapshot())
    assert held == {"exported": 0, "dropped": 18, "queued": 2}
    assert sink.stats() == {"exported": 2, "dropped": 18, "queued": 0}
    assert arrived == 2


def test_shutdown_flushes_the_batch_the_pipe_and_the_span_process() -> None:
    # A long schedule delay and a slow receiver: when the stop comes, spans sit in the batch
    # being filled, in the span process's queue and in an export on the wire.
    with http_receiver(delay=0.05) as (url, received):
        sink = sink_for(url, schedule_delay=3600.0, max_queue_size=4096, max_export_batch_size=64)
        pid = sink.pid
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(300):
            tracker.apply(update)
        assert sink.stats()["queued"] > 0
        sink.shutdown(timeout=60.0)
        spans = received.snapshot()
    assert sink.stats() == {"exported": 600, "dropped": 0, "queued": 0}
    assert len({s.span.span_id for s in spans}) == len(spans) == 600
    # The span process is stopped and reaped.
    assert pid not in {p.pid for p in multiprocessing.active_children()}
    assert sink.pid is None


def test_a_shutdown_past_its_timeout_stops_the_span_process_and_counts_the_rest() -> None:
    with http_receiver(delay=5.0) as (url, received):
        sink = sink_for(url, schedule_delay=0.0, timeout=10.0)
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(4):
            tracker.apply(update)
        sink.shutdown(timeout=0.5)
        sink.shutdown()  # idempotent
        assert received.snapshot() == []
    assert sink.stats() == {"exported": 0, "dropped": 8, "queued": 0}
    assert sink.pid is None


def test_a_task_that_cannot_be_encoded_costs_only_its_own_spans(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A lone surrogate crosses the pipe (marshal keeps it) but has no UTF-8 form.
    broken = Script(str(uuid.uuid4()), "bad \ud800 name")
    with http_receiver() as (url, received):
        sink = sink_for(url)
        tracker = Tracker(observers=[sink])
        for update in [*simple_tasks(1), broken("taskStart", 0), broken("taskEnd", 1)]:
            tracker.apply(update)
        for update in simple_tasks(1):
            tracker.apply(update)
        sink.shutdown()
        spans = received.snapshot()
    assert sink.stats() == {"exported": 4, "dropped": 1, "queued": 0}
    assert {s.span.name for s in spans} == {"requence.task bulk", "requence.node only"}
    assert "could not encode the spans of task" in caplog.text
    assert "1 spans dropped (encoding failed)" in caplog.text
