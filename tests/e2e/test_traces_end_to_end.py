"""Spans, exemplars and OTLP metrics from the real exporter process, decoded at real endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.simulator.scripted import ScriptedServer
from tests.e2e.process import ExporterProcess
from tests.e2e.scripts import LAST, SCRIPT, A, B, C, S
from tests.e2e.servers import LoopThread, serve
from tests.otlp_receiver import ReceivedSpan, dead_endpoint, grpc_receiver, http_receiver

pytestmark = pytest.mark.slow

TASK_SPANS = 4  # A, B, S (a sub-task of A) and C (incomplete)
NODE_SPANS = 6  # A: fetch, spawn, fetch again; B: scan; S: page; C: render


def ns(seconds: float) -> int:
    start = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    return int(start.timestamp()) * 10**9 + round(seconds * 1000) * 10**6


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.fixture
def server(loop: LoopThread) -> Iterator[ScriptedServer]:
    scripted = serve(loop, lambda: ScriptedServer(SCRIPT, bearer="b"))
    assert isinstance(scripted, ScriptedServer)
    yield scripted
    loop.run(scripted.aclose())


def run(server: ScriptedServer, env: dict[str, str]) -> tuple[str, ExporterProcess]:
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token, **env}
    with ExporterProcess([], env) as exporter:
        exporter.wait_position(LAST)
        scrape = exporter.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        ).text
        assert exporter.stop() == 0
    return scrape, exporter


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    out: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        out.setdefault(s.span.name, []).append(s)
    return out


def test_spans_over_http_exact_and_flushed_on_a_clean_stop(server: ScriptedServer) -> None:
    with http_receiver() as (url, received):
        # A long schedule delay: only the flush at shutdown can deliver the spans.
        scrape, _ = run(
            server, {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
        )
        spans = received.snapshot()
    assert len(spans) == TASK_SPANS + NODE_SPANS
    assert len({s.span.span_id for s in spans}) == len(spans)  # no duplicates
    assert {s.resource["service.name"] for s in spans} == {"requence"}
    named = by_name(spans)
    [invoice] = named["requence.task invoice"]
    [ocr] = named["requence.task ocr"]
    [page_task] = named["requence.task ocr-page"]
    [report] = named["requence.task report"]
    # Trace id = the root task's UUID: the sub-task lives in its root's trace.
    assert invoice.span.trace_id == uuid.UUID(A).bytes
    assert page_task.span.trace_id == uuid.UUID(A).bytes
    assert page_task.span.parent_span_id == invoice.span.span_id
    assert ocr.span.trace_id == uuid.UUID(B).bytes
    assert report.span.trace_id == uuid.UUID(C).bytes
    assert invoice.span.parent_span_id == b""
    assert page_task.attributes["requence.task.root_id"] == A
    # Server timestamps, exactly.
    assert (invoice.span.start_time_unix_nano, invoice.span.end_time_unix_nano) == (
        ns(0.0),
        ns(10.0),
    )
    assert (ocr.span.start_time_unix_nano, ocr.span.end_time_unix_nano) == (ns(1.5), ns(7.0))
    assert ocr.span.status.code == Status.STATUS_CODE_ERROR
    assert ocr.span.status.message == "scan failed"
    assert invoice.span.status.code != Status.STATUS_CODE_ERROR
    # The task that was running before the watch began starts at its first update seen.
    assert report.attributes["requence.task.incomplete"] is True
    assert report.span.start_time_unix_nano == ns(8.5)
    assert "requence.task.incomplete" not in invoice.attributes
    # One node span per attempt, each a child of its task span.
    fetches = sorted(named["requence.node fetch"], key=lambda s: s.span.start_time_unix_nano)
    assert [
        (
            f.span.start_time_unix_nano,
            f.span.end_time_unix_nano,
            f.attributes["requence.node.outcome"],
        )
        for f in fetches
    ] == [(ns(1.0), ns(3.0), "deferred"), (ns(6.0), ns(8.0), "ended")]
    assert {f.span.parent_span_id for f in fetches} == {invoice.span.span_id}
    assert [e.name for e in fetches[0].span.events] == ["requence.node.deferred"]
    [scan] = named["requence.node scan"]
    assert scan.span.parent_span_id == ocr.span.span_id
    assert scan.span.status.code == Status.STATUS_CODE_ERROR
    [exception] = [e for e in scan.span.events if e.name == "exception"]
    assert {kv.key: kv.value.string_value for kv in exception.attributes}[
        "exception.message"
    ] == "bad scan"
    [page] = named["requence.node node-page"]
    assert page.span.parent_span_id == page_task.span.span_id

    # The duration exemplars carry the root task's trace id, for a jump to the trace.
    exemplars = {
        s.labels["task_name"]: s.exemplar.labels["trace_id"]
        for f in text_string_to_metric_families(scrape)
        if f.name == "requence_task_duration_seconds"
        for s in f.samples
        if s.exemplar is not None
    }
    assert exemplars == {
        "invoice": uuid.UUID(A).hex,
        "ocr-page": uuid.UUID(A).hex,
        "ocr": uuid.UUID(B).hex,
    }


def test_spans_over_grpc(server: ScriptedServer) -> None:
    with grpc_receiver() as (url, received):
        run(server, {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
        spans = received.snapshot()
    assert len(spans) == TASK_SPANS + NODE_SPANS
    traces = {s.span.trace_id for s in spans}
    assert traces == {uuid.UUID(t).bytes for t in (A, B, C)}
    assert S not in {s.attributes.get("requence.task.root_id") for s in spans}


def test_a_dead_endpoint_never_stops_metrics_and_drops_are_counted(
    server: ScriptedServer,
) -> None:
    with dead_endpoint() as url:
        env = {
            "REQUENCE_ACCESS_TOKEN": server.access_token,
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "500",
        }
        with ExporterProcess([], env) as exporter:
            exporter.wait_position(LAST)
            assert exporter.value("requence_tasks_started_total", task_name="invoice") == 1
            assert exporter.value("requence_tasks_errored_total", task_name="ocr") == 1
            exporter.wait_for(
                lambda: (
                    exporter.value("requence_exporter_spans_dropped_total")
                    == TASK_SPANS + NODE_SPANS
                ),
                what="every span counted as dropped",
                timeout=30,
            )
            assert exporter.value("requence_exporter_spans_exported_total") == 0
            assert exporter.stop() == 0


def test_metrics_over_otlp_match_the_scrape(server: ScriptedServer) -> None:
    with http_receiver() as (url, received):
        run(
            server,
            {
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{url}/v1/metrics",
                "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            },
        )
        pushes = list(received.metrics)
    assert pushes, "the final push on stop did not arrive"
    metrics = {
        m.name: m
        for rm in pushes[-1].resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    started = {
        next(kv.value.string_value for kv in p.attributes if kv.key == "task_name"): p.as_double
        for p in metrics["requence_tasks_started"].sum.data_points
    }
    # report was first seen mid-flight: its started counter exists, at zero.
    assert started == {"invoice": 1.0, "ocr": 1.0, "ocr-page": 1.0, "report": 0.0}
    assert metrics["requence_tasks_started"].sum.is_monotonic
    durations = {
        tuple(sorted((kv.key, kv.value.string_value) for kv in p.attributes)): (p.count, p.sum)
        for p in metrics["requence_task_duration_seconds"].histogram.data_points
    }
    assert durations[(("outcome", "ended"), ("task_name", "invoice"))] == (1, 10.0)
    assert metrics["requence_exporter_tracked_tasks"].gauge.data_points[0].as_double == 0
