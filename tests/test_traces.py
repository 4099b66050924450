"""The traces sink, checked by decoding what reaches a real OTLP endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from exporter.core.ids import node_span_id, task_span_id
from exporter.core.tracker import Tracker
from exporter.core.updates import Update
from exporter.metrics.otlp_push import build_resource
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.sink import TraceSink, build_trace_sink
from tests.otlp_receiver import (
    ReceivedSpan,
    dead_endpoint,
    grpc_receiver,
    http_receiver,
    hung_endpoint,
)
from tests.trace_updates import T0_MS, Script, node, seconds, simple_tasks, sink_for


def ns(ms: int) -> int:
    """The same moment in nanoseconds, computed with integers only."""
    return (T0_MS + ms) * 1_000_000


class Workload:
    """Every scenario of the span model, as updates for a tracker."""

    def __init__(self) -> None:
        ids = [str(uuid.uuid4()) for _ in range(6)]
        self.top, self.sub, self.retried, self.failed, self.incomplete, self.evicted = ids
        self.n1, self.n2, self.ref = node("fetch"), node("transform"), node("child", "reference")
        self.s1 = node(None, "logic")  # no alias: named by its id
        self.x, self.y, self.z = node("flaky"), node("slow"), node("other")
        self.w, self.v = node("late"), node("stuck")

    def updates(self) -> list[Update]:
        """Interleaved updates of six tasks."""
        a = Script(self.top, "order")
        b = Script(self.sub, "order-child", root_id=self.top)
        c = Script(self.retried, "retrying")
        d = Script(self.failed, "failing")
        e = Script(self.incomplete, None)
        f = Script(self.evicted, "forgotten")
        return [
            a("taskStart", 0),
            f("taskStart", 0),
            c("taskStart", 0),
            a("nodeStart", 10, self.n1),
            a("nodeStart", 12, self.n2),  # parallel with n1
            c("nodeStart", 1, self.x),
            f("nodeStart", 1, self.v),
            a("nodeUpdate", 15, self.n1),
            c("nodeError", 5, self.x, "boom"),
            c("nodeEnd", 5, self.x),  # after its error: closes nothing more
            c("nodeStart", 6, self.x),
            f("nodeUpdate", 2, self.v),
            a("nodeEnd", 30, self.n2),
            c("nodeDefer", 8, self.x, "waiting for a retry"),
            a("nodeEnd", 40, self.n1),
            a("nodeStart", 41, self.ref),
            b("taskStart", 50),
            b("nodeStart", 51, self.s1),
            d("taskStart", 0),
            d("nodeStart", 1, self.y),
            d("nodeStart", 2, self.z),
            c("nodeStart", 20, self.x),
            b("nodeEnd", 60, self.s1),
            e("nodeStart", 3, self.w),
            b("taskEnd", 70),
            e("nodeEnd", 4, self.w),
            d("taskError", 9, message="out of credits"),
            c("nodeEnd", 25, self.x),
            a("nodeEnd", 75, self.ref),
            e("taskEnd", 5),
            c("taskEnd", 30),
            a("taskEnd", 80),
        ]

    def run(self, tracker: Tracker) -> None:
        """Feed every update, then let the forgotten task expire."""
        for update in self.updates():
            tracker.apply(update)
        assert tracker.expire(seconds(2 * 3_600_000)) == 1


SPANS_PER_RUN = 4 + 2 + 4 + 3 + 2 + 2


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[Span]]:
    """Spans grouped by name."""
    out: dict[str, list[Span]] = {}
    for received in spans:
        out.setdefault(received.span.name, []).append(received.span)
    return out


def attrs(span: Span) -> dict[str, object]:
    """A span's attributes as a plain dict."""
    return ReceivedSpan(span, {}, "").attributes


def sid(value: int) -> bytes:
    """A span id as it travels in OTLP."""
    return value.to_bytes(8, "big")


@pytest.fixture(scope="module")
def delivered() -> Iterator[tuple[Workload, list[ReceivedSpan], dict[str, int]]]:
    """The whole workload exported once over OTLP/HTTP; the spans arrive only on shutdown."""
    work = Workload()
    with http_receiver() as (url, received):
        sink = sink_for(url)
        work.run(Tracker(observers=[sink], task_ttl=3600.0))
        before = len(received.snapshot())
        sink.shutdown()
        sink.shutdown()  # idempotent
        assert before == 0  # nothing was due yet: what follows came from the flush
        yield work, received.snapshot(), sink.stats()


def test_every_span_arrives_once(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    _, spans, stats = delivered
    assert len(spans) == SPANS_PER_RUN
    assert len({s.span.span_id for s in spans}) == SPANS_PER_RUN
    assert stats == {"exported": SPANS_PER_RUN, "dropped": 0, "queued": 0}
    for received in spans:
        assert received.resource["service.name"] == "requence"
        assert received.scope == "requence-exporter"
        assert received.span.kind == Span.SPAN_KIND_INTERNAL


def test_top_task_with_parallel_nodes(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    work, spans, _ = delivered
    names = by_name(spans)
    (task,) = names["requence.task order"]
    assert task.trace_id == uuid.UUID(work.top).bytes
    assert task.span_id == sid(task_span_id(work.top))
    assert task.parent_span_id == b""
    assert (task.start_time_unix_nano, task.end_time_unix_nano) == (ns(0), ns(80))
    assert task.status.code == Status.STATUS_CODE_UNSET
    assert attrs(task) == {
        "requence.task.id": work.top,
        "requence.task.name": "order",
        "requence.task.outcome": "ended",
    }
    expected = {
        "fetch": (work.n1, 10, 40),
        "transform": (work.n2, 12, 30),
        "child": (work.ref, 41, 75),
    }
    for alias, (n, start, end) in expected.items():
        (span,) = names[f"requence.node {alias}"]
        assert span.trace_id == task.trace_id
        assert span.parent_span_id == task.span_id
        assert span.span_id == sid(node_span_id(work.top, n.id, 1))
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (ns(start), ns(end))
        assert attrs(span) == {
            "requence.node.id": n.id,
            "requence.node.alias": alias,
            "requence.node.type": n.type,
            "requence.node.outcome": "ended",
            "requence.node.attempt": 1,
        }
        assert span.status.code == Status.STATUS_CODE_UNSET
        assert list(span.events) == []


def test_sub_task_hangs_under_its_root_in_the_root_trace(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    work, spans, _ = delivered
    names = by_name(spans)
    (root,) = names["requence.task order"]
    (sub,) = names["requence.task order-child"]
    assert sub.trace_id == uuid.UUID(work.top).bytes
    assert sub.parent_span_id == root.span_id
    assert attrs(sub)["requence.task.root_id"] == work.top
    assert (sub.start_time_unix_nano, sub.end_time_unix_nano) == (ns(50), ns(70))
    (s1,) = names[f"requence.node {work.s1.id}"]  # no alias: its id names it
    assert s1.parent_span_id == sub.span_id
    assert s1.trace_id == root.trace_id
    assert "requence.node.alias" not in attrs(s1)
    assert attrs(s1)["requence.node.type"] == "logic"


def test_errored_node_then_retry_after_defer(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    work, spans, _ = delivered
    names = by_name(spans)
    (task,) = names["requence.task retrying"]
    assert task.trace_id == uuid.UUID(work.retried).bytes
    attempts = sorted(names["requence.node flaky"], key=lambda s: attrs(s)["requence.node.attempt"])
    assert [attrs(s)["requence.node.attempt"] for s in attempts] == [1, 2, 3]
    assert [attrs(s)["requence.node.outcome"] for s in attempts] == ["errored", "deferred", "ended"]
    assert [s.span_id for s in attempts] == [
        sid(node_span_id(work.retried, work.x.id, k)) for k in (1, 2, 3)
    ]
    errored, deferred, ended = attempts
    assert all(s.parent_span_id == task.span_id for s in attempts)
    assert errored.status.code == Status.STATUS_CODE_ERROR
    assert errored.status.message == "boom"
    (event,) = errored.events
    assert event.name == "exception"
    assert event.time_unix_nano == ns(5) == errored.end_time_unix_nano
    assert {kv.key: kv.value.string_value for kv in event.attributes} == {
        "exception.message": "boom"
    }
    assert deferred.status.code == Status.STATUS_CODE_UNSET
    assert (deferred.start_time_unix_nano, deferred.end_time_unix_nano) == (ns(6), ns(8))
    (event,) = deferred.events
    assert event.name == "requence.node.deferred"
    assert event.time_unix_nano == ns(8)
    assert {kv.key: kv.value.string_value for kv in event.attributes} == {
        "requence.node.defer_reason": "waiting for a retry"
    }
    assert (ended.start_time_unix_nano, ended.end_time_unix_nano) == (ns(20), ns(25))
    assert task.status.code == Status.STATUS_CODE_UNSET


def test_task_error_interrupts_open_nodes(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    work, spans, _ = delivered
    names = by_name(spans)
    (task,) = names["requence.task failing"]
    assert attrs(task)["requence.task.id"] == work.failed
    assert task.status.code == Status.STATUS_CODE_ERROR
    assert task.status.message == "out of credits"
    assert attrs(task)["requence.task.outcome"] == "errored"
    assert task.end_time_unix_nano == ns(9)
    for alias, start in (("slow", 1), ("other", 2)):
        (span,) = names[f"requence.node {alias}"]
        assert attrs(span)["requence.node.outcome"] == "interrupted"
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (ns(start), ns(9))
        assert span.parent_span_id == task.span_id
        assert span.status.code == Status.STATUS_CODE_UNSET


def test_incomplete_and_evicted_tasks_say_so(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    work, spans, _ = delivered
    names = by_name(spans)
    (incomplete,) = names["requence.task unnamed"]
    assert attrs(incomplete) == {
        "requence.task.id": work.incomplete,
        "requence.task.name": "unnamed",
        "requence.task.outcome": "ended",
        "requence.task.incomplete": True,
    }
    # No start was seen: the span starts at the first update that was.
    assert (incomplete.start_time_unix_nano, incomplete.end_time_unix_nano) == (ns(3), ns(5))
    (evicted,) = names["requence.task forgotten"]
    assert attrs(evicted)["requence.task.evicted"] is True
    assert attrs(evicted)["requence.task.outcome"] == "evicted"
    assert "requence.task.incomplete" not in attrs(evicted)
    # It ends at the last update seen.
    assert (evicted.start_time_unix_nano, evicted.end_time_unix_nano) == (ns(0), ns(2))
    (stuck,) = names["requence.node stuck"]
    assert attrs(stuck)["requence.node.outcome"] == "interrupted"
    assert stuck.parent_span_id == evicted.span_id


def test_exporting_again_gives_identical_ids(
    delivered: tuple[Workload, list[ReceivedSpan], dict[str, int]],
) -> None:
    work, first, _ = delivered

    def key(s: Span) -> tuple[bytes, bytes, bytes, str, int, int]:
        return (
            s.trace_id,
            s.span_id,
            s.parent_span_id,
            s.name,
            s.start_time_unix_nano,
            s.end_time_unix_nano,
        )

    with http_receiver() as (url, received):
        sink = sink_for(url)
        work.run(Tracker(observers=[sink], task_ttl=3600.0))  # a second replica, same stream
        sink.shutdown()
        second = received.snapshot()
    assert sorted(key(s.span) for s in second) == sorted(key(s.span) for s in first)


def test_grpc_delivers_the_same_spans() -> None:
    task_id = str(uuid.uuid4())
    script = Script(task_id, "grpc-task")
    n = node("step")
    with grpc_receiver() as (endpoint, received):
        settings = TracingSettings(
            enabled=True, protocol="grpc", endpoint=endpoint, schedule_delay=60.0
        )
        sink = build_trace_sink(settings)
        assert sink is not None
        tracker = Tracker(observers=[sink])
        for update in (
            script("taskStart", 0),
            script("nodeStart", 1, n),
            script("nodeError", 7, n, "bad input"),
            script("taskError", 8, message="node failed"),
        ):
            tracker.apply(update)
        sink.shutdown()
        spans = by_name(received.wait_for(2, timeout=5.0))
    (task,) = spans["requence.task grpc-task"]
    (step,) = spans["requence.node step"]
    assert task.trace_id == step.trace_id == uuid.UUID(task_id).bytes
    assert step.parent_span_id == task.span_id
    assert (task.start_time_unix_nano, task.end_time_unix_nano) == (ns(0), ns(8))
    assert task.status.message == "node failed"
    assert step.status.code == Status.STATUS_CODE_ERROR
    assert step.events[0].attributes[0].value.string_value == "bad input"
    assert sink.stats()["exported"] == 2


@pytest.mark.parametrize("kind", ["refused", "503"])
def test_a_dead_backend_costs_spans_not_the_stream(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with dead_endpoint() as dead, http_receiver(status=503) as (unavailable, received):
        url = dead if kind == "refused" else unavailable
        sink = sink_for(
            url,
            timeout=0.2,
            schedule_delay=0.01,
            max_queue_size=4,
            max_export_batch_size=2,
            block_timeout=0.2,
        )
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(30):
            tracker.apply(update)  # returns: blocking is bounded
        sink.shutdown(timeout=10.0)
        stats = sink.stats()
        assert received.spans == []
    assert stats["exported"] == 0
    assert stats["dropped"] == 60
    assert stats["queued"] == 0
    # Many failed batches, few log lines: the sink's once, the transport's once per message.
    ours = [r for r in caplog.records if r.name == "exporter.traces.sink"]
    assert len(ours) == 1
    assert "spans dropped" in ours[0].getMessage()
    failures = [
        r.getMessage() for r in caplog.records if r.name == "exporter.traces.otlp_transport"
    ]
    assert len(failures) == 1
    assert "export failed after 1 attempt(s)" in failures[0]


async def feed_like_the_stream(sink: TraceSink, tracker: Tracker, updates: list[Update]) -> None:
    """Apply updates one read at a time, awaiting the sink's backpressure after each read."""
    for update in updates:
        tracker.apply(update)
        wait = sink.backpressure()
        if wait is not None:
            await wait


@pytest.mark.slow
async def test_a_slow_backend_holds_the_stream_back_and_loses_nothing() -> None:
    # Each request takes 0.05 s and the queue holds one task: the feeding waits about 2 s in
    # all, each wait far below the 1 s bound, which every successful export renews.
    with http_receiver(delay=0.05) as (url, received):
        sink = sink_for(
            url, schedule_delay=0.0, max_queue_size=2, max_export_batch_size=2, block_timeout=1.0
        )
        await feed_like_the_stream(sink, Tracker(observers=[sink]), simple_tasks(40))
        await asyncio.to_thread(sink.shutdown, 30.0)
        spans = received.snapshot()
    assert sink.stats() == {"exported": 80, "dropped": 0, "queued": 0}
    assert len({s.span.span_id for s in spans}) == len(spans) == 80
    assert received.requests == 40  # the queue of two spans forced one batch per task


async def test_a_half_full_queue_below_a_batch_is_sent_without_waiting_for_the_schedule() -> None:
    # Three spans per task and room for four: after the first task the queue is half full
    # while it holds less than a batch, an hour before the schedule would export it.
    with http_receiver() as (url, received):
        sink = sink_for(
            url, schedule_delay=3600.0, max_queue_size=4, max_export_batch_size=4, block_timeout=10
        )
        tracker = Tracker(observers=[sink])
        for _ in range(3):
            script = Script(str(uuid.uuid4()), "pair")
            first, second = node("first"), node("second")
            updates = [
                script("taskStart", 0),
                script("nodeStart", 1, first),
                script("nodeStart", 1, second),
                script("taskEnd", 3),
            ]
            await feed_like_the_stream(sink, tracker, updates)
        assert sink.stats()["dropped"] == 0
        # Every task went out before the shutdown, each as soon as it made the queue half full.
        assert len(received.wait_for(9)) == 9
        await asyncio.to_thread(sink.shutdown)
    assert sink.stats() == {"exported": 9, "dropped": 0, "queued": 0}


def test_handing_tasks_over_never_waits_for_a_hung_backend() -> None:
    # A collector that never answers, and a stall budget of an hour: the old hand-off waited
    # out the budget on a threading.Condition, in the event loop's thread.
    with hung_endpoint() as url:
        sink = sink_for(
            url, schedule_delay=0.0, max_queue_size=4, max_export_batch_size=2, block_timeout=3600
        )
        tracker = Tracker(observers=[sink])
        feeding = threading.Thread(target=lambda: [tracker.apply(u) for u in simple_tasks(50)])
        feeding.start()
        feeding.join(30)
        assert not feeding.is_alive(), "handing a task over waited for the span process"
        stats = sink.stats()
        sink.shutdown(timeout=0.5)
    assert stats["queued"] <= 4
    assert stats["dropped"] + stats["queued"] == 100  # what did not fit is counted, not held


async def test_backpressure_waits_with_the_event_loop_free() -> None:
    with hung_endpoint() as url:
        sink = sink_for(
            url, schedule_delay=0.0, max_queue_size=4, max_export_batch_size=2, block_timeout=0.3
        )
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(2):
            tracker.apply(update)
        wait = sink.backpressure()
        assert wait is not None  # half full, nothing acknowledged: the stream should wait
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                beats += 1
                await asyncio.sleep(0.01)

        beating = asyncio.create_task(heartbeat())
        await wait  # ends with the stall budget: the collector never answers
        beating.cancel()
        assert beats > 1  # other tasks (probes, scrapes) ran meanwhile
        again = sink.backpressure()
        assert again is not None
        await again  # the budget is spent until an export succeeds: no second wait
        await asyncio.to_thread(sink.shutdown, 0.5)


def test_a_slow_backend_past_the_bound_drops_and_counts() -> None:
    with http_receiver(delay=0.3) as (url, received):
        sink = sink_for(
            url, schedule_delay=0.0, max_queue_size=2, max_export_batch_size=2, block_timeout=0.01
        )
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(10):
            tracker.apply(update)
        sink.shutdown(timeout=30.0)
        stats = sink.stats()
        arrived = len(received.snapshot())
    assert stats["dropped"] > 0
    assert stats["exported"] + stats["dropped"] == 20
    assert arrived == stats["exported"]


def test_after_shutdown_tasks_are_dropped_not_raised() -> None:
    with http_receiver() as (url, received):
        sink = sink_for(url)
        sink.shutdown()
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(2):
            tracker.apply(update)
        assert sink.stats() == {"exported": 0, "dropped": 4, "queued": 0}
    assert received.snapshot() == []


def test_env_base_endpoint_reaches_v1_traces_with_gzip_and_headers() -> None:
    with http_receiver() as (url, received):
        settings = TracingSettings.from_env(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": url,
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
                "OTEL_EXPORTER_OTLP_HEADERS": "x-scope-orgid=tenant%201,Authorization=Bearer abc",
                "OTEL_SERVICE_NAME": "requence-prod",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
            }
        )
        sink = build_trace_sink(settings)
        assert sink is not None
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(1):
            tracker.apply(update)
        sink.shutdown()
        spans = received.snapshot()
        assert received.paths == ["/v1/traces"]
        assert received.encodings == ["gzip"]
        assert received.headers[0]["x-scope-orgid"] == "tenant 1"
        assert received.headers[0]["authorization"] == "Bearer abc"
    assert len(spans) == 2
    assert spans[0].resource == {
        "service.name": "requence-prod",
        "deployment.environment": "prod",
    }


def test_tracing_off_builds_no_sink() -> None:
    assert build_trace_sink(TracingSettings.from_env({})) is None


def test_resource_defaults_to_requence() -> None:
    resource = build_resource(TracingSettings())
    assert dict(resource.attributes) == {"service.name": "requence"}
