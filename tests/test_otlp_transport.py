"""The OTLP transports against real HTTP and gRPC receivers on 127.0.0.1: retries, refusals,
compression, headers and TLS. Counts are asserted, never timings."""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from exporter import __version__
from exporter.core.tracker import Tracker
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.otlp_transport import (
    Backoff,
    ExportResult,
    GrpcTransport,
    HttpTransport,
    Transport,
    grpc_target,
    retry_after,
)
from exporter.traces.otlp_wire import SCOPE_NAME, encode_task, export_request, resource_scope
from exporter.traces.sink import build_trace_sink
from tests.otlp_receiver import (
    Answer,
    GrpcFailure,
    dead_endpoint,
    grpc_receiver,
    hostile_endpoint,
    http_receiver,
)
from tests.pki import Pki
from tests.trace_updates import simple_tasks, sink_for

QUICK = Backoff(initial=0.01, maximum=0.05)  # retries without slowing the suite down
SPANS = 2


def body() -> bytes:
    """An export request of one task with one node attempt: two spans."""
    item = (str(uuid.uuid4()), "t", None, 1.0, 2.0, "ended", None, False,
            (("n", "service", "step", 1, 1.0, 1.5, "ended", None),))  # fmt: skip
    head = resource_scope([("service.name", "requence")], SCOPE_NAME, __version__)
    return export_request(head, [encode_task(item)])


def http_settings(url: str, **changes: Any) -> TracingSettings:
    settings = TracingSettings(enabled=True, endpoint=url + "/v1/traces", timeout=10.0)
    return dataclasses.replace(settings, **changes)


@contextmanager
def http_transport(url: str, **changes: Any) -> Iterator[HttpTransport]:
    transport = HttpTransport(http_settings(url, **changes), backoff=QUICK)
    try:
        yield transport
    finally:
        transport.close()


def export(transport: Transport) -> ExportResult:
    return transport.export(body(), SPANS)


# -- OTLP/HTTP -----------------------------------------------------------------------------


def test_http_retries_503_then_delivers() -> None:
    with http_receiver(answers=[Answer(503), Answer(502)]) as (url, received):
        with http_transport(url) as transport:
            assert export(transport) == ExportResult(ok=True)
        assert received.posts == 3
        assert received.requests == 1
        assert len(received.spans) == SPANS


def test_http_gives_up_after_the_attempts_allowed() -> None:
    with http_receiver(status=503) as (url, received), http_transport(url) as transport:
        assert export(transport) == ExportResult(ok=False)
        assert received.posts == 6  # exporter.traces.otlp_transport.MAX_ATTEMPTS


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500])
def test_http_other_errors_are_not_retried(status: int, caplog: pytest.LogCaptureFixture) -> None:
    refusal = Answer(status, body=RpcStatus(code=3, message="span too large").SerializeToString())
    with http_receiver(answers=[refusal]) as (url, received), http_transport(url) as transport:
        assert export(transport) == ExportResult(ok=False)
        assert received.posts == 1
    assert f"HTTP {status} 'span too large'" in caplog.text


def test_http_retry_after_beyond_the_timeout_gives_up_at_once() -> None:
    wait = Answer(429, {"Retry-After": "3600"})
    with http_receiver(answers=[wait]) as (url, received), http_transport(url) as transport:
        assert export(transport) == ExportResult(ok=False)
        assert received.posts == 1  # neither retried early nor waited out


@pytest.mark.parametrize(
    "retry_after", ["0", email.utils.formatdate(0, usegmt=True)], ids=["seconds", "date"]
)
def test_http_retry_after_replaces_the_backoff(retry_after: str) -> None:
    # The backoff alone would wait an hour, past the timeout: the back-end's word wins.
    slow = Backoff(initial=3600.0, maximum=3600.0)
    with http_receiver(answers=[Answer(503, {"Retry-After": retry_after})]) as (url, received):
        transport = HttpTransport(http_settings(url), backoff=slow)
        try:
            assert export(transport) == ExportResult(ok=True)
        finally:
            transport.close()
        assert received.posts == 2


@given(
    st.text(max_size=30) | st.sampled_from(["\u00b2", "1" * 5000, "Sun, 06 Nov 0000 08:49:37 GMT"])
)
def test_any_retry_after_gives_seconds_or_none(value: str) -> None:
    delay = retry_after(value)
    assert delay is None or 0 <= delay < float("inf")


def test_http_junk_retry_after_falls_back_to_the_backoff(caplog: pytest.LogCaptureFixture) -> None:
    junk = Answer(503, {"Retry-After": "\u00b2"})
    with http_receiver(answers=[junk]) as (url, received), http_transport(url) as transport:
        assert export(transport) == ExportResult(ok=True)
        assert received.posts == 2
    assert "unexpectedly" not in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.slow
def test_http_an_endless_answer_is_read_no_further_than_the_cap() -> None:
    sent = 0

    def endless(conn: socket.socket) -> None:
        nonlocal sent
        while True:
            conn.sendall(b"\0" * 65536)
            sent += 65536

    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n"
    with hostile_endpoint(head, endless) as url, http_transport(url) as transport:
        outcome: list[ExportResult] = []
        exporting = threading.Thread(target=lambda: outcome.append(export(transport)))
        exporting.start()
        exporting.join(30)
        assert not exporting.is_alive(), "the transport kept reading an endless answer"
    assert outcome == [ExportResult(ok=True)]  # a 200 is a delivery, whatever follows it
    assert sent < 16 * 1024 * 1024  # what the socket buffers took, no more


def test_http_a_refusal_echoing_our_header_is_logged_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "OTLP-5ecret-4b1d"
    message = f"bad header authorization: Bearer {secret}"
    echo = Answer(400, body=RpcStatus(code=3, message=message).SerializeToString())
    headers = (("authorization", f"Bearer {secret}"),)
    with http_receiver(answers=[echo]) as (url, _), http_transport(url, headers=headers) as t:
        assert export(t) == ExportResult(ok=False)
    assert "HTTP 400 'bad header authorization: ***'" in caplog.text
    assert secret not in caplog.text


def test_http_gzip_headers_and_content_type_arrive() -> None:
    headers = (("authorization", "Bearer s3cret"), ("x-scope-orgid", "tenant 1"))
    with http_receiver() as (url, received):
        with http_transport(url, compression="gzip", headers=headers) as transport:
            assert export(transport).ok
            assert export(transport).ok
        assert received.encodings == ["gzip", "gzip"]
        assert len(received.spans) == 2 * SPANS
        sent = received.headers[0]
        assert sent["authorization"] == "Bearer s3cret"
        assert sent["x-scope-orgid"] == "tenant 1"
        assert sent["content-type"] == "application/x-protobuf"
        assert sent["user-agent"] == f"requence-exporter/{__version__}"


def test_http_partial_success_reports_the_rejected_spans(caplog: pytest.LogCaptureFixture) -> None:
    partial = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=1, error_message="too old")
    ).SerializeToString()
    with http_receiver(answers=[Answer(200, body=partial)]) as (url, received):
        with http_transport(url) as transport:
            assert export(transport) == ExportResult(ok=True, rejected=1, message="too old")
        assert received.posts == 1
    assert "rejected 1 of 2 spans: 'too old'" in caplog.text


def test_http_partial_success_through_the_span_process() -> None:
    partial = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=1)
    ).SerializeToString()
    with http_receiver(answers=[Answer(200, body=partial)]) as (url, received):
        sink = sink_for(url)
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(3):
            tracker.apply(update)
        sink.shutdown()
        assert received.posts == 1
    assert sink.stats() == {"exported": 5, "dropped": 1, "queued": 0}


def test_http_dead_endpoint_fails_after_retries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter.traces.otlp_transport")
    with dead_endpoint() as url, http_transport(url, timeout=5.0) as transport:
        assert export(transport) == ExportResult(ok=False)
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 5
    assert "failed after 6 attempt(s), the last one with ConnectError" in caplog.text


# -- OTLP/gRPC -----------------------------------------------------------------------------


def grpc_settings(endpoint: str, **changes: Any) -> TracingSettings:
    return http_settings("", **{"protocol": "grpc", "endpoint": endpoint, **changes})


@contextmanager
def grpc_transport(endpoint: str, **changes: Any) -> Iterator[GrpcTransport]:
    transport = GrpcTransport(grpc_settings(endpoint, **changes), backoff=QUICK)
    try:
        yield transport
    finally:
        transport.close()


def test_grpc_delivers_with_metadata_and_gzip() -> None:
    headers = (("authorization", "Bearer s3cret"),)
    with grpc_receiver() as (endpoint, received):
        with grpc_transport(endpoint, headers=headers, compression="gzip") as transport:
            assert export(transport) == ExportResult(ok=True)
        assert len(received.spans) == SPANS
        assert received.headers[0]["authorization"] == "Bearer s3cret"
        assert received.headers[0]["user-agent"].startswith(f"requence-exporter/{__version__}")


def test_grpc_retries_unavailable_then_delivers() -> None:
    failures = [GrpcFailure(grpc.StatusCode.UNAVAILABLE), GrpcFailure(grpc.StatusCode.ABORTED)]
    with grpc_receiver(failures=failures) as (endpoint, received):
        with grpc_transport(endpoint) as transport:
            assert export(transport) == ExportResult(ok=True)
        assert received.posts == 3
        assert len(received.spans) == SPANS


def retry_info(seconds: int) -> tuple[tuple[str, bytes], ...]:
    info = RetryInfo(retry_delay=Duration(seconds=seconds)).SerializeToString()
    return (("google.rpc.retryinfo-bin", info),)


@pytest.mark.parametrize(
    ("failure", "posts", "ok"),
    [
        (GrpcFailure(grpc.StatusCode.INVALID_ARGUMENT), 1, False),
        (GrpcFailure(grpc.StatusCode.UNAUTHENTICATED), 1, False),
        # Exhausted without saying when to come back: not retried.
        (GrpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED), 1, False),
        (GrpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_info(0)), 2, True),
        # Asked to come back after the export timeout: given up at once.
        (GrpcFailure(grpc.StatusCode.UNAVAILABLE, retry_info(3600)), 1, False),
    ],
    ids=["invalid", "unauthenticated", "exhausted", "exhausted-retry-info", "retry-info-late"],
)
def test_grpc_retries_only_what_may_succeed_later(
    failure: GrpcFailure, posts: int, ok: bool
) -> None:
    with grpc_receiver(failures=[failure]) as (endpoint, received):
        with grpc_transport(endpoint) as transport:
            assert export(transport).ok is ok
        assert received.posts == posts


def test_grpc_target_and_security() -> None:
    def target(endpoint: str, insecure: bool = False) -> tuple[str, bool]:
        return grpc_target(grpc_settings(endpoint, insecure=insecure))

    assert target("http://otel:4317") == ("otel:4317", False)
    assert target("https://otel:4317") == ("otel:4317", True)
    assert target("https://otel:4317", insecure=True) == ("otel:4317", True)
    assert target("otel:4317") == ("otel:4317", True)
    assert target("otel:4317", insecure=True) == ("otel:4317", False)


def test_grpc_dead_endpoint_drops_and_counts() -> None:
    with dead_endpoint() as url:
        settings = grpc_settings(url, timeout=0.5, schedule_delay=0.0)
        sink = build_trace_sink(settings)
        assert sink is not None
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(5):
            tracker.apply(update)
        sink.shutdown(timeout=30.0)
    assert sink.stats() == {"exported": 0, "dropped": 10, "queued": 0}


# -- TLS -----------------------------------------------------------------------------------


def server_tls(pki: Pki, *, client_auth: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_auth:
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_env(pki: Pki, *, client: bool) -> dict[str, str]:
    env = {"OTEL_EXPORTER_OTLP_CERTIFICATE": str(pki.ca)}
    if client:
        env["OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"] = str(pki.client_cert)
        env["OTEL_EXPORTER_OTLP_CLIENT_KEY"] = str(pki.client_key)
    return env


@pytest.mark.parametrize(
    ("env", "client_auth", "ok"),
    [
        ("ca", False, True),
        ("none", False, False),  # our CA is not among the system's
        ("mtls", True, True),
        ("ca", True, False),  # the server wants a client certificate
    ],
)
def test_https_with_the_configured_ca_and_client_certificate(
    pki: Pki, env: str, client_auth: bool, ok: bool
) -> None:
    variables = {} if env == "none" else tls_env(pki, client=env == "mtls")
    with http_receiver(tls=server_tls(pki, client_auth=client_auth)) as (url, received):
        settings = TracingSettings.from_env(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url + "/v1/traces", **variables}
        )
        transport = HttpTransport(settings, backoff=Backoff(initial=3600.0))
        try:
            assert export(transport).ok is ok
        finally:
            transport.close()
        assert len(received.spans) == (SPANS if ok else 0)


def grpc_server_tls(pki: Pki, *, client_auth: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
        root_certificates=pki.ca.read_bytes() if client_auth else None,
        require_client_auth=client_auth,
    )


@pytest.mark.parametrize(
    ("env", "client_auth", "ok"),
    [("ca", False, True), ("mtls", True, True), ("ca", True, False)],
)
def test_grpc_tls_with_the_configured_ca_and_client_certificate(
    pki: Pki, env: str, client_auth: bool, ok: bool
) -> None:
    tls = grpc_server_tls(pki, client_auth=client_auth)
    with grpc_receiver(tls=tls) as (endpoint, received):
        settings = TracingSettings.from_env(
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                **tls_env(pki, client=env == "mtls"),
            }
        )
        transport = GrpcTransport(settings, backoff=Backoff(initial=3600.0))
        try:
            assert export(transport).ok is ok
        finally:
            transport.close()
        assert len(received.spans) == (SPANS if ok else 0)


def test_mtls_through_the_span_process(pki: Pki) -> None:
    with http_receiver(tls=server_tls(pki, client_auth=True)) as (url, received):
        settings = TracingSettings.from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": url, **tls_env(pki, client=True)}
        )
        sink = build_trace_sink(settings)
        assert sink is not None
        tracker = Tracker(observers=[sink])
        for update in simple_tasks(2):
            tracker.apply(update)
        sink.shutdown()
        assert len(received.spans) == 4
    assert sink.stats() == {"exported": 4, "dropped": 0, "queued": 0}
