"""Real OTLP receivers on 127.0.0.1 for tests: HTTP (/v1/traces) and gRPC, plus dead endpoints.

Every receiver decodes what arrives with opentelemetry-proto and keeps the spans, each paired
with its resource attributes, so tests assert on exactly what went over the wire. A receiver
can be scripted to answer its first requests with failures, and can serve TLS.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "Answer",
    "GrpcFailure",
    "Received",
    "ReceivedSpan",
    "dead_endpoint",
    "grpc_receiver",
    "hostile_endpoint",
    "http_receiver",
    "hung_endpoint",
    "plain_value",
    "wait_until",
]


def plain_value(value: AnyValue) -> Any:
    """An OTLP attribute value as a Python value."""
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _attributes(items: Iterator[KeyValue] | Any) -> dict[str, Any]:
    return {kv.key: plain_value(kv.value) for kv in items}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, with the attributes of its resource and scope name."""

    span: Span
    resource: dict[str, Any]
    scope: str

    @property
    def attributes(self) -> dict[str, Any]:
        """The span's attributes as a plain dict."""
        return _attributes(self.span.attributes)


class Answer(NamedTuple):
    """A scripted HTTP answer: status, extra headers and body."""

    status: int
    headers: dict[str, str] = {}  # noqa: RUF012 (a NamedTuple default, never mutated)
    body: bytes = b""


class GrpcFailure(NamedTuple):
    """A scripted gRPC failure: status code and trailing metadata."""

    code: grpc.StatusCode
    trailing: tuple[tuple[str, str | bytes], ...] = ()


@dataclass
class Received:
    """What a receiver collected: decoded spans, request count, and the encodings seen."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0  # export requests that were accepted
    posts: int = 0  # every request that arrived, answered with a failure or not
    encodings: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        """Keep every span of one export request."""
        with self.lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(ReceivedSpan(span, resource, scope_spans.scope.name))

    def snapshot(self) -> list[ReceivedSpan]:
        """A copy of the spans received so far."""
        with self.lock:
            return list(self.spans)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans once at least `count` arrived, or what arrived by the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.snapshot()
            if len(spans) >= count:
                return spans
            time.sleep(0.01)
        return self.snapshot()

    def next_failure(self, script: list[Any]) -> Any:
        """Count an arriving request and take the next scripted answer, if any is left."""
        with self.lock:
            self.posts += 1
            return script.pop(0) if script else None


def _handler(
    received: Received, delay: float, status: int, answers: Sequence[Answer]
) -> type[BaseHTTPRequestHandler]:
    script = list(answers)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if delay:
                time.sleep(delay)
            answer = received.next_failure(script)
            if answer is not None:
                self._reply(answer.status, answer.body, "application/x-protobuf", answer.headers)
                return
            if status != 200:
                self._reply(status, b"unavailable", "text/plain")
                return
            if self.path not in ("/v1/traces", "/v1/metrics"):
                self._reply(404, b"not found", "text/plain")
                return
            encoding = self.headers.get("Content-Encoding", "identity")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if self.path == "/v1/metrics":
                metrics = metrics_service_pb2.ExportMetricsServiceRequest()
                metrics.ParseFromString(body)
                with received.lock:
                    received.metrics.append(metrics)
                reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
                self._reply(200, reply, "application/x-protobuf")
                return
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            with received.lock:
                received.encodings.append(encoding)
                received.paths.append(self.path)
                received.headers.append({k.lower(): v for k, v in self.headers.items()})
            received.add(request)
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self._reply(200, reply, "application/x-protobuf")

        def _reply(
            self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is not the place for access logs."""

    return Handler


class _TlsServer(ThreadingHTTPServer):
    """Wraps each accepted connection in TLS, in its own thread (a failed handshake stays there)."""

    tls: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate or gave none: nothing to serve
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


@contextmanager
def http_receiver(
    *,
    delay: float = 0.0,
    status: int = 200,
    answers: Sequence[Answer] = (),
    tls: ssl.SSLContext | None = None,
) -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver; yields its base URL (no path) and what it received.

    `delay` makes it slow (seconds per request); a `status` other than 200 makes it refuse;
    `answers` are given, in order, to the first requests; `tls` makes it an https:// server.
    """
    received = Received()
    handler = _handler(received, delay, status, answers)
    server: ThreadingHTTPServer
    if tls is None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    else:
        server = _TlsServer(("127.0.0.1", 0), handler)
        server.tls = tls
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        scheme = "http" if tls is None else "https"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received, failures: Sequence[GrpcFailure]) -> None:
        self._received = received
        self._script = list(failures)

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        failure = self._received.next_failure(self._script)
        if failure is not None:
            context.set_trailing_metadata(failure.trailing)
            context.abort(failure.code, "scripted failure")
        with self._received.lock:
            self._received.headers.append(dict(context.invocation_metadata()))
        self._received.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def grpc_receiver(
    *, failures: Sequence[GrpcFailure] = (), tls: grpc.ServerCredentials | None = None
) -> Iterator[tuple[str, Received]]:
    """A gRPC OTLP receiver; yields its endpoint and what it received.

    The endpoint is `http://127.0.0.1:port`, or `https://...` with `tls`; `failures` answer
    the first calls, in order.
    """
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        _TraceService(received, failures), server
    )
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", tls)
    server.start()
    try:
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None).wait(5)


@contextmanager
def dead_endpoint() -> Iterator[str]:
    """A base URL whose port is held but not listening, so every connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections get a reset
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextmanager
def hung_endpoint() -> Iterator[str]:
    """A base URL that takes connections and requests and never answers (nothing accepts them;
    the kernel completes the handshakes and buffers the requests)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextmanager
def hostile_endpoint(head: bytes, body: Callable[[socket.socket], None]) -> Iterator[str]:
    """A base URL whose every request is answered with `head`, then `body(connection)` writes
    what it likes (an endless body, for one) until the client leaves."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(head)
                body(conn)
            except OSError:
                pass  # the client left

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        listener.close()
        thread.join(5)


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `check` until it holds or the deadline passes; return its last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()
