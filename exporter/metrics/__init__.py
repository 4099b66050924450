"""The metrics sink: what the tracker observes, as Prometheus metrics.

`families` (the metric names, a contract), `store` (their values, fed by the tracker),
`labels` (cardinality limits), `exposition` (Prometheus text and OpenMetrics) and
`otlp_push` (the same metrics over OTLP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "DEFAULT_LAG_BUCKETS",
    "DEFAULT_NODE_BUCKETS",
    "DEFAULT_TASK_BUCKETS",
    "FAMILIES",
    "OPENMETRICS_CONTENT_TYPE",
    "OTHER",
    "TEXT_CONTENT_TYPE",
    "Exemplar",
    "Family",
    "LabelLimiter",
    "Metrics",
    "OtlpMetricsPusher",
    "ProcessMetrics",
    "add_rules_parser",
    "build_metric_exporter",
    "build_resource",
    "fmt_float",
    "label_string",
    "metrics_data",
    "otlp_metrics_enabled",
    "run_rules",
    "wants_openmetrics",
]

if TYPE_CHECKING:
    from exporter.metrics.alerting.command import add_rules_parser, run_rules
    from exporter.metrics.exposition import (
        OPENMETRICS_CONTENT_TYPE,
        TEXT_CONTENT_TYPE,
        Exemplar,
        fmt_float,
        label_string,
        wants_openmetrics,
    )
    from exporter.metrics.families import (
        DEFAULT_LAG_BUCKETS,
        DEFAULT_NODE_BUCKETS,
        DEFAULT_TASK_BUCKETS,
        FAMILIES,
        Family,
    )
    from exporter.metrics.labels import OTHER, LabelLimiter
    from exporter.metrics.otlp_push import (
        OtlpMetricsPusher,
        build_metric_exporter,
        build_resource,
        metrics_data,
        otlp_metrics_enabled,
    )
    from exporter.metrics.process import ProcessMetrics
    from exporter.metrics.store import Metrics
else:
    # Each name is imported from its module on first use, so importing the package
    # loads only the modules used (the span process, for one, never loads the metrics).
    from exporter.core import lazy_exports

    _MODULES = {
        "DEFAULT_LAG_BUCKETS": "exporter.metrics.families",
        "DEFAULT_NODE_BUCKETS": "exporter.metrics.families",
        "DEFAULT_TASK_BUCKETS": "exporter.metrics.families",
        "Exemplar": "exporter.metrics.exposition",
        "FAMILIES": "exporter.metrics.families",
        "Family": "exporter.metrics.families",
        "LabelLimiter": "exporter.metrics.labels",
        "Metrics": "exporter.metrics.store",
        "OPENMETRICS_CONTENT_TYPE": "exporter.metrics.exposition",
        "OTHER": "exporter.metrics.labels",
        "OtlpMetricsPusher": "exporter.metrics.otlp_push",
        "ProcessMetrics": "exporter.metrics.process",
        "TEXT_CONTENT_TYPE": "exporter.metrics.exposition",
        "add_rules_parser": "exporter.metrics.alerting.command",
        "build_metric_exporter": "exporter.metrics.otlp_push",
        "build_resource": "exporter.metrics.otlp_push",
        "fmt_float": "exporter.metrics.exposition",
        "label_string": "exporter.metrics.exposition",
        "metrics_data": "exporter.metrics.otlp_push",
        "otlp_metrics_enabled": "exporter.metrics.otlp_push",
        "run_rules": "exporter.metrics.alerting.command",
        "wants_openmetrics": "exporter.metrics.exposition",
    }

    __getattr__ = lazy_exports(globals(), _MODULES)
