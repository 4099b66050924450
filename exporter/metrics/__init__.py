"""The metrics sink: what the tracker observes, as Prometheus metrics.

`families` (the metric names, a contract), `store` (their values, fed by the tracker),
`labels` (cardinality limits), `exposition` (Prometheus text and OpenMetrics) and
`otlp_push` (the same metrics over OTLP).
"""
