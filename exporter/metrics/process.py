"""The exporter process's own resource metrics, as client_python's process collector has them.

`process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_cpu_seconds_total`,
`process_start_time_seconds`, `process_open_fds` and `process_max_fds`, read from /proc at
scrape time (absent where there is no /proc). The values come from prometheus_client's
`ProcessCollector`, so names, help and units match every other Python exporter; they are
rendered with the exporter's own exposition functions, in the scrape's format.
"""

from __future__ import annotations

from prometheus_client.process_collector import ProcessCollector

from exporter.metrics.exposition import fmt_float, header, label_string, sample

__all__ = ["ProcessMetrics"]


class ProcessMetrics:
    """Renders the process families; a few small /proc reads per scrape."""

    def __init__(self, proc: str = "/proc") -> None:
        # registry=None: collected on demand here, never registered in a global registry.
        self._collector = ProcessCollector(registry=None, proc=proc)

    def __call__(self, openmetrics: bool) -> str:
        """The families in Prometheus text format, or OpenMetrics."""
        out: list[str] = []
        for family in self._collector.collect():
            out.append(header(family.name, family.type, family.documentation, openmetrics))
            for s in family.samples:
                labels = label_string(tuple(s.labels), tuple(s.labels.values()))
                out.append(sample(s.name, labels, fmt_float(float(s.value))))
        return "".join(out)
