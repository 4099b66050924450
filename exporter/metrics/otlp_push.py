"""The same metrics pushed over OTLP, for shops without Prometheus.

Built from the one store and the one set of definitions in `exporter.metrics.store`: counters become
cumulative monotonic sums (named without `_total`, which Prometheus-side converters add back),
gauges gauges, histograms explicit-bucket histograms with the same bounds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
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
from exporter.core import ConfigError
from exporter.metrics.store import Metrics
from exporter.traces import TracingSettings, env_duration_ms

__all__ = ["OtlpMetricsPusher", "build_resource", "metrics_data", "otlp_metrics_enabled"]

log = logging.getLogger(__name__)
_SCOPE = InstrumentationScope("requence-exporter", __version__)
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def build_resource(settings: TracingSettings) -> Resource:
    """The resource the metrics carry: the one the spans carry (`service.name` and extras)."""
    return Resource(settings.resource())


def otlp_metrics_enabled(environ: Mapping[str, str], *, force: bool) -> bool:
    """On with --otlp-metrics or when OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set."""
    return force or bool(environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


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


def build_metric_exporter(environ: Mapping[str, str]) -> MetricExporter:
    """The OTLP metric exporter for OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL (it reads the rest)."""
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpExporter,
        )

        return HttpExporter()
    raise ConfigError(
        f"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL={protocol!r}: use http/protobuf or grpc"
    )


class OtlpMetricsPusher:
    """Pushes a snapshot every OTEL_METRIC_EXPORT_INTERVAL (default 60 s) and once on stop."""

    def __init__(
        self,
        metrics: Metrics,
        exporter: MetricExporter,
        resource: Resource,
        *,
        interval: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._metrics = metrics
        self._exporter = exporter
        self._resource = resource
        self.interval = (
            env_duration_ms(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000.0)
            if interval is None
            else interval
        )
        if self.interval < 1.0:  # 0 would push in a busy loop
            raise ConfigError("OTEL_METRIC_EXPORT_INTERVAL must be at least 1000 milliseconds")
        self._start_ns = time.time_ns()
        self.pushed = 0
        self.failed = 0

    async def push(self) -> None:
        """Take a snapshot on the event loop, send it from a thread; failures are logged."""
        data = metrics_data(self._metrics, self._resource, self._start_ns, time.time_ns())
        try:
            result = await asyncio.to_thread(self._exporter.export, data)
        except Exception as exc:  # a failing back-end never stops the exporter
            result = MetricExportResult.FAILURE
            log.warning("OTLP metrics push failed: %s", exc)
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
        """Push once more, then shut the exporter down."""
        await self.push()
        await asyncio.to_thread(self._exporter.shutdown)
