"""The same metrics pushed over OTLP, for shops without Prometheus.

Built from the one store and the one set of definitions in `exporter.metrics.store`: counters become
cumulative monotonic sums (named without `_total`, which Prometheus-side converters add back),
gauges gauges, histograms explicit-bucket histograms with the same bounds.

Over http/protobuf the snapshot goes through the traces' own transport (answers read up to a cap
and within the timeout, junk Retry-After values ignored, header values never logged); over gRPC
through the SDK's exporter. Either runs in a thread of its own, one push at a time, and the
event loop waits for it a bounded time: a hung, slow or endless collector costs pushes, counted
as failed, never the loop, the scrapes or the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from exporter import __version__
from exporter.core.errors import ConfigError
from exporter.core.headers import transport_failure
from exporter.core.logs import RateLimitedWarning
from exporter.metrics.store import Metrics
from exporter.traces.otlp_config import TracingSettings, env_duration_ms, parse_headers
from exporter.traces.otlp_transport import HttpTransport

__all__ = [
    "MetricSender",
    "OtlpMetricsPusher",
    "build_metric_exporter",
    "build_resource",
    "metrics_data",
]

log = logging.getLogger(__name__)
_SCOPE = InstrumentationScope("requence-exporter", __version__)
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def build_resource(settings: TracingSettings) -> Resource:
    """The resource the metrics carry: the one the spans carry (`service.name` and extras)."""
    return Resource(settings.resource())


def metrics_data(metrics: Metrics, resource: Resource, start_ns: int, now_ns: int) -> MetricsData:
    """One OTLP snapshot of every metric."""
    out: list[Metric] = []
    for family, rows in metrics.scalars():
        points = [
            NumberDataPoint(
                attributes=dict(zip(family.labels, values, strict=True)),
                start_time_unix_nano=start_ns,
                time_unix_nano=now_ns,
                value=value,
            )
            for values, value in rows
        ]
        data: Sum | Gauge = (
            Sum(points, _CUMULATIVE, is_monotonic=True)
            if family.kind == "counter"
            else Gauge(points)
        )
        out.append(Metric(family.name, family.help, None, data))
    for histogram in metrics.histograms():
        family = histogram.family
        hpoints = [
            HistogramDataPoint(
                attributes=dict(zip(family.labels, series.values, strict=True)),
                start_time_unix_nano=start_ns,
                time_unix_nano=now_ns,
                count=sum(series.counts),
                sum=series.sum,
                bucket_counts=list(series.counts),
                explicit_bounds=list(histogram.bounds),
                # Not tracked (Prometheus histograms have none); the encoder leaves them unset.
                min=None,  # type: ignore[arg-type]
                max=None,  # type: ignore[arg-type]
            )
            for series in histogram.series.values()
        ]
        out.append(Metric(family.name, family.help, "s", Histogram(hpoints, _CUMULATIVE)))
    scope = ScopeMetrics(scope=_SCOPE, metrics=out, schema_url="")
    return MetricsData(resource_metrics=[ResourceMetrics(resource, [scope], "")])


class MetricSender(Protocol):
    """Sends one snapshot (the SDK's exporters and `HttpMetrics` alike)."""

    def export(self, metrics_data: MetricsData) -> MetricExportResult:
        """Deliver the snapshot; never raise for a failing back-end."""
        ...

    def shutdown(self) -> None:
        """Release the connection."""
        ...


class HttpMetrics:
    """OTLP/HTTP metrics through the exporter's own transport."""

    def __init__(self, settings: TracingSettings) -> None:
        self._transport = HttpTransport(settings, signal="metrics")

    def export(self, metrics_data: MetricsData) -> MetricExportResult:
        """Encode the snapshot and send it, retrying within the export timeout."""
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        request = encode_metrics(metrics_data)
        points = sum(
            len(metric.data.data_points)
            for resource in metrics_data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
        result = self._transport.export(request.SerializeToString(), points)
        return MetricExportResult.SUCCESS if result.ok else MetricExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the connection."""
        self._transport.close()


def build_metric_exporter(environ: Mapping[str, str]) -> MetricSender:
    """The OTLP metric sender for OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL and its settings."""
    for name in ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        if environ.get(name, "").strip():
            parse_headers(environ[name], name)  # checked here: the SDK would quote a bad one
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        exporter: MetricSender = GrpcExporter()
        return exporter
    if protocol == "http/protobuf":
        return HttpMetrics(TracingSettings.from_env(environ, force=True, signal="metrics"))
    raise ConfigError(
        f"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL={protocol!r}: use http/protobuf or grpc"
    )


T = TypeVar("T")


def _in_daemon_thread(call: Callable[[], T]) -> asyncio.Future[T]:
    """Run `call` in a thread of its own that never holds up the process's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = call(), None
        except Exception as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="requence-metrics-push", daemon=True).start()
    return future


class OtlpMetricsPusher:
    """Pushes a snapshot every OTEL_METRIC_EXPORT_INTERVAL (default 60 s) and once on stop."""

    def __init__(
        self,
        metrics: Metrics,
        exporter: MetricSender,
        resource: Resource,
        *,
        interval: float | None = None,
        wait: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._metrics = metrics
        self._exporter = exporter
        self._resource = resource
        self.interval = (  # at least a second: 0 would push in a busy loop
            env_duration_ms(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000.0, low=1.0)
            if interval is None
            else interval
        )
        # How long the loop waits for one push: the export timeout, and as long again for a
        # last read; a push still running after it is left to finish on its own.
        timeout = TracingSettings.from_env(env, signal="metrics").timeout
        self.wait = 2 * timeout + 1.0 if wait is None else wait
        self._start_ns = time.time_ns()
        self._running: asyncio.Future[MetricExportResult] | None = None
        self._warn = RateLimitedWarning(log)
        self.pushed = 0
        self.failed = 0

    async def push(self) -> None:
        """Take a snapshot on the event loop, send it from a thread; failures are logged."""
        if self._running is not None and not self._running.done():
            self.failed += 1
            self._warn("busy", "OTLP metrics push skipped: the last one has not finished")
            return
        data = metrics_data(self._metrics, self._resource, self._start_ns, time.time_ns())
        exporter = self._exporter
        self._running = _in_daemon_thread(lambda: exporter.export(data))
        try:
            async with asyncio.timeout(self.wait):
                result = await asyncio.shield(self._running)
        except TimeoutError:
            result = MetricExportResult.FAILURE
            self._warn("slow", "OTLP metrics push still running after %.1fs", self.wait)
        except Exception as exc:  # a failing back-end never stops the exporter
            result = MetricExportResult.FAILURE
            self._warn("failed", "OTLP metrics push failed: %s", transport_failure(exc))
        if result == MetricExportResult.SUCCESS:
            self.pushed += 1
        else:
            self.failed += 1

    async def run(self) -> None:
        """Push until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.push()

    async def aclose(self) -> None:
        """Push once more, then shut the exporter down (each within the push's bound)."""
        await self.push()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.wait):
                await _in_daemon_thread(self._exporter.shutdown)
