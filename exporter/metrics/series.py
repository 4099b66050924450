"""The metrics sink's series: a counter cell, a histogram's series and a histogram family."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from exporter.metrics.exposition import Exemplar, fmt_float, histogram_lines, label_string
from exporter.metrics.families import Family

__all__ = ["Cell", "Histogram", "Series"]


class Cell:
    """One counter series: its value and its rendered label set."""

    __slots__ = ("labels", "value", "values")

    def __init__(self, values: tuple[str, ...], names: Sequence[str]) -> None:
        self.values = values
        self.labels = label_string(names, values)
        self.value = 0


class Series:
    """One histogram series: per-bucket counts (not cumulative), sum, and bucket exemplars."""

    __slots__ = ("counts", "exemplars", "labels", "sum", "values")

    def __init__(self, values: tuple[str, ...], names: Sequence[str], buckets: int) -> None:
        self.values = values
        self.labels = label_string(names, values)
        self.counts = [0] * buckets
        self.sum = 0.0
        self.exemplars: list[Exemplar | None] | None = None


class Histogram:
    """A histogram family's bounds and series."""

    __slots__ = ("bounds", "bounds_text", "family", "series")

    def __init__(self, family: Family, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"{family.name}: buckets must be distinct and increasing")
        self.family = family
        self.bounds = tuple(float(b) for b in bounds)
        self.bounds_text = [*(fmt_float(b) for b in self.bounds), "+Inf"]
        self.series: dict[tuple[str, ...], Series] = {}

    def series_for(self, values: tuple[str, ...]) -> Series:
        found = self.series.get(values)
        if found is None:
            found = Series(values, self.family.labels, len(self.bounds) + 1)
            self.series[values] = found
        return found

    def observe(self, series: Series, value: float, trace_id: str | None, timestamp: float) -> None:
        i = bisect_left(self.bounds, value)
        series.counts[i] += 1
        series.sum += value
        if trace_id is not None:
            if series.exemplars is None:
                series.exemplars = [None] * len(series.counts)
            series.exemplars[i] = Exemplar(trace_id, value, timestamp)

    def lines(self, openmetrics: bool) -> Iterator[str]:
        name = self.family.name
        for s in self.series.values():
            yield from histogram_lines(
                name,
                s.labels,
                bounds_text=self.bounds_text,
                counts=s.counts,
                total=s.sum,
                exemplars=s.exemplars,
                openmetrics=openmetrics,
            )
