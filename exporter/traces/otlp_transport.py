"""OTLP trace transports: an encoded export request over HTTP (httpx) or gRPC (grpcio).

Both retry what the OTLP specification calls transient (HTTP 429, 502, 503, 504 and network
errors; gRPC UNAVAILABLE, DEADLINE_EXCEEDED and the like, RESOURCE_EXHAUSTED only when the
back-end says when to come back) with capped exponential backoff and jitter, wait as long as
the back-end's Retry-After or RetryInfo asks, and never retry past the export timeout
(`OTEL_EXPORTER_OTLP_TIMEOUT`, which bounds one export with its retries). Anything else fails
the export at once. A transport never raises: `export` answers with an `ExportResult` and logs
why an export failed; header values are never logged. An answer's body is read up to
`MAX_ANSWER_BYTES` and within the export timeout: a 200 with an endless body costs neither
memory nor more time.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx

from exporter import __version__
from exporter.core.headers import transport_failure
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.otlp_replies import partial_success, retry_delay, status_message
from exporter.traces.otlp_wire import WireError

__all__ = [
    "GRPC_METHOD",
    "RETRYABLE_HTTP",
    "Backoff",
    "ExportResult",
    "GrpcTransport",
    "HttpTransport",
    "Transport",
    "grpc_target",
    "make_transport",
    "retry_after",
]

log = logging.getLogger(__name__)

USER_AGENT: Final = f"requence-exporter/{__version__}"
RETRYABLE_HTTP: Final = frozenset({429, 502, 503, 504})
# The retryable codes of the OTLP specification, by name (grpc is imported lazily);
# RESOURCE_EXHAUSTED only with a RetryInfo, i.e. when the back-end can take the data later.
RETRYABLE_GRPC: Final = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
)
GRPC_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GZIP_LEVEL: Final = 1  # ids dominate the body: level 6 is only 6% smaller, at twice the CPU
MAX_ATTEMPTS: Final = 6
# An OTLP answer is a few bytes (a partial success, a status); more is not read.
MAX_ANSWER_BYTES: Final = 64 * 1024
_MAX_RETRY_AFTER_DIGITS: Final = 9


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What became of one export: delivered (maybe with rejected spans) or failed."""

    ok: bool
    rejected: int = 0  # spans a partially successful export did not accept
    message: str = ""  # the back-end's word on a partial success


_FAILED: Final = ExportResult(ok=False)


@dataclass(frozen=True, slots=True)
class _Transient:
    """An attempt that may succeed later; `delay` is the back-end's wish, if it said one."""

    why: str
    delay: float | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between attempts: `initial * 2**(attempt - 1)`, at most `maximum`, +/- `jitter`."""

    initial: float = 1.0
    maximum: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1 for the first)."""
        base = min(self.maximum, self.initial * 2.0 ** (attempt - 1))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


class Transport(Protocol):
    """Sends encoded `ExportTraceServiceRequest`s to an OTLP back-end."""

    def export(self, body: bytes, spans: int) -> ExportResult:
        """Deliver one request holding `spans` spans, retrying within the export timeout."""
        ...

    def close(self) -> None:
        """Release the connection; idempotent."""
        ...


class _Retrying:
    """The retry loop both transports share; subclasses make single attempts."""

    def __init__(
        self,
        settings: TracingSettings,
        *,
        backoff: Backoff | None,
        stop: threading.Event | None,
        signal: str = "traces",
    ) -> None:
        # What the logs call it and what it holds: "traces" of spans or "metrics" of points.
        self._signal = signal
        self._items = "spans" if signal == "traces" else "data points"
        self._timeout = settings.timeout
        self._backoff = backoff or Backoff()
        self._stop = stop or threading.Event()  # set: give up waiting for a retry
        # The header values, and their words, are cut out of what a back-end says back.
        words = {w for _, v in settings.headers for w in (v, *v.split()) if len(w) >= 6}
        self._secrets = sorted(words, key=len, reverse=True)

    def _redacted(self, text: str) -> str:
        """A back-end's words, without our header values should it echo them."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:200]

    def _attempt(self, body: bytes, timeout: float) -> ExportResult | _Transient:
        raise NotImplementedError

    def export(self, body: bytes, spans: int) -> ExportResult:
        """Deliver one request holding `spans` spans, retrying within the export timeout."""
        deadline = time.monotonic() + self._timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = self._attempt(body, max(0.001, deadline - time.monotonic()))
            except Exception:  # a bug or an unforeseen error costs this export, not the process
                log.exception("%s: export failed unexpectedly", self._signal)
                return _FAILED
            if isinstance(outcome, ExportResult):
                if outcome.rejected or outcome.message:
                    log.warning(
                        "%s: the back-end rejected %d of %d %s: %r",
                        self._signal,
                        outcome.rejected,
                        spans,
                        self._items,
                        self._redacted(outcome.message),
                    )
                return outcome
            delay = outcome.delay
            if delay is None:
                delay = self._backoff.delay(attempt)
            if attempt >= MAX_ATTEMPTS or delay > deadline - time.monotonic():
                log.warning(
                    "%s: export failed after %d attempt(s), the last one with %s",
                    self._signal,
                    attempt,
                    outcome.why,
                )
                return _FAILED
            log.debug(
                "%s: export attempt %d: %s; retrying in %.2fs",
                self._signal,
                attempt,
                outcome.why,
                delay,
            )
            if self._stop.wait(delay):
                return _FAILED


def _partial(body: bytes) -> ExportResult:
    try:
        rejected, message = partial_success(body)
    except WireError:  # a success with an answer we cannot read is still a success
        return ExportResult(ok=True)
    return ExportResult(ok=True, rejected=rejected, message=message)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None for
    anything else (`²` is a digit to str.isdigit(), and float() refuses it)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= _MAX_RETRY_AFTER_DIGITS else None
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _read_answer(response: httpx.Response, deadline: float) -> bytes | None:
    """The answer's body, or None when it is longer than `MAX_ANSWER_BYTES`, still coming at
    the deadline, or compressed (inflating it could take any amount of memory)."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES or time.monotonic() > deadline:
            return None
    return bytes(body)


def _ssl_context(settings: TracingSettings) -> ssl.SSLContext | bool:
    """The TLS set-up of the settings' files; True (httpx's default CAs) when none is set."""
    if settings.certificate is None and settings.client_certificate is None:
        return True
    if settings.certificate is not None:
        context = ssl.create_default_context(cafile=settings.certificate)
    else:
        context = httpx.create_ssl_context()
    if settings.client_certificate is not None and settings.client_key is not None:
        context.load_cert_chain(settings.client_certificate, settings.client_key)
    return context


class HttpTransport(_Retrying):
    """OTLP/HTTP with protobuf bodies, on one reused connection (spans, or metrics)."""

    def __init__(
        self,
        settings: TracingSettings,
        *,
        backoff: Backoff | None = None,
        stop: threading.Event | None = None,
        signal: str = "traces",
    ) -> None:
        super().__init__(settings, backoff=backoff, stop=stop, signal=signal)
        self._url = settings.endpoint
        self._gzip = settings.compression == "gzip"
        headers = {"user-agent": USER_AGENT, **dict(settings.headers)}
        # The body's format is not the configuration's to change.
        headers["content-type"] = "application/x-protobuf"
        if self._gzip:
            headers["content-encoding"] = "gzip"
        self._client = httpx.Client(
            headers=headers, verify=_ssl_context(settings), timeout=settings.timeout
        )

    def export(self, body: bytes, spans: int) -> ExportResult:
        """Deliver one request holding `spans` spans, retrying within the export timeout."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return super().export(body, spans)

    def _attempt(self, body: bytes, timeout: float) -> ExportResult | _Transient:
        deadline = time.monotonic() + timeout
        try:
            with self._client.stream("POST", self._url, content=body, timeout=timeout) as answer:
                # Closed unread past the cap: the connection goes with it, not back to the pool.
                content = _read_answer(answer, deadline)
        except httpx.TransportError as exc:  # refused, reset, timed out: all worth a retry
            return _Transient(transport_failure(exc))
        code = answer.status_code
        if 200 <= code < 300:
            return ExportResult(ok=True) if content is None else _partial(content)
        if code in RETRYABLE_HTTP:
            return _Transient(f"HTTP {code}", retry_after(answer.headers.get("retry-after")))
        detail = ""
        if content is not None:
            detail = content[:200].decode("utf-8", "replace")
            if answer.headers.get("content-type", "").startswith("application/x-protobuf"):
                try:
                    detail = status_message(content)
                except WireError:
                    detail = ""
        log.warning(
            "%s: the back-end refused the export: HTTP %d %r",
            self._signal,
            code,
            self._redacted(detail),
        )
        return _FAILED

    def close(self) -> None:
        """Close the connection; idempotent."""
        self._client.close()


def grpc_target(settings: TracingSettings) -> tuple[str, bool]:
    """The gRPC target (`host:port`) of the endpoint, and whether to use TLS."""
    endpoint = settings.endpoint
    if "://" not in endpoint:  # no scheme: the ..._INSECURE variable decides
        return endpoint, not settings.insecure
    parts = urlsplit(endpoint)
    return parts.netloc, parts.scheme != "http"


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as file:
        return file.read()


class GrpcTransport(_Retrying):
    """OTLP/gRPC: the TraceService's Export method, called with the encoded bytes."""

    def __init__(
        self,
        settings: TracingSettings,
        *,
        backoff: Backoff | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        import grpc

        super().__init__(settings, backoff=backoff, stop=stop)
        self._grpc: Any = grpc
        target, tls = grpc_target(settings)
        compression = (
            grpc.Compression.Gzip
            if settings.compression == "gzip"
            else grpc.Compression.NoCompression
        )
        options = [("grpc.primary_user_agent", USER_AGENT)]
        if tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(settings.certificate),
                private_key=_read(settings.client_key),
                certificate_chain=_read(settings.client_certificate),
            )
            self._channel = grpc.secure_channel(
                target, credentials, options=options, compression=compression
            )
        else:
            self._channel = grpc.insecure_channel(target, options=options, compression=compression)
        # No serializers: the request is bytes already, and so is the answer.
        self._call = self._channel.unary_unary(GRPC_METHOD)
        self._metadata = settings.headers

    def _attempt(self, body: bytes, timeout: float) -> ExportResult | _Transient:
        try:
            answer = self._call(body, timeout=timeout, metadata=self._metadata)
        except self._grpc.RpcError as error:
            code = error.code()
            name = getattr(code, "name", str(code))
            delay = None
            for key, value in error.trailing_metadata() or ():
                if key == "google.rpc.retryinfo-bin" and isinstance(value, bytes):
                    try:
                        delay = retry_delay(value)
                    except WireError:
                        delay = None
            if name in RETRYABLE_GRPC or (name == "RESOURCE_EXHAUSTED" and delay is not None):
                return _Transient(f"gRPC {name}", delay)
            log.warning(
                "%s: the back-end refused the export: gRPC %s %r",
                self._signal,
                name,
                self._redacted(str(error.details())),
            )
            return _FAILED
        return _partial(answer)

    def close(self) -> None:
        """Close the channel; idempotent."""
        self._channel.close()


def make_transport(settings: TracingSettings, *, stop: threading.Event | None = None) -> Transport:
    """The transport the settings' protocol names."""
    if settings.protocol == "grpc":
        return GrpcTransport(settings, stop=stop)
    return HttpTransport(settings, stop=stop)
