"""The metrics sink: counts and durations from the tracker's observations, rendered for scrapes.

Every metric is defined once in `FAMILIES`; the Prometheus text and OpenMetrics renderings (and
any other output) are made from those definitions and this store. Values that describe the
present (in-progress gauges, tracked tasks, connection state) are read at scrape time from
their owners, never copied.
"""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from exporter import __version__
from exporter.core.ids import trace_id_hex
from exporter.core.refusals import REFUSAL_REASONS
from exporter.core.status import RECONNECT_REASONS, StreamStatus
from exporter.core.tasks import FinishedTask, NodeAttempt, TaskState
from exporter.core.tracker import Tracker
from exporter.core.updates import (
    CUT_FIELDS,
    NODE_START,
    SKIP_REASONS,
    TASK_START,
    UPDATE_TYPES,
    Update,
)
from exporter.metrics.exposition import fmt_float, header, label_string, sample
from exporter.metrics.families import (
    ATTEMPTS_DROPPED,
    BUILD_INFO,
    CONNECTED,
    CONNECTIONS_REFUSED,
    DEFAULT_LAG_BUCKETS,
    DEFAULT_LOOP_LAG_BUCKETS,
    DEFAULT_NODE_BUCKETS,
    DEFAULT_TASK_BUCKETS,
    EVICTED,
    INCOMPLETE,
    LAG,
    LAST_UPDATE,
    LOOP_LAG,
    NEGATIVE,
    NODE,
    NODE_COUNTERS,
    NODE_DURATION,
    NODES_IN_PROGRESS,
    OLDEST_IN_PROGRESS,
    OVERFLOW,
    POSITION,
    RECONNECTS,
    SKIPPED,
    SPANS_DROPPED,
    SPANS_EXPORTED,
    STATE_SAVE_FAILURES,
    TASK_COUNTERS,
    TASK_DURATION,
    TASKS_IN_PROGRESS,
    TRACKED,
    UPDATE_FAMILIES,
    UPDATES,
    VALUES_CUT,
    Family,
)
from exporter.metrics.labels import LabelLimiter
from exporter.metrics.series import Cell, Histogram, Series

__all__ = ["Metrics"]


SpanStats = Callable[[], tuple[int, int]]
# Renders further families (the process metrics) in the scrape's format: True for OpenMetrics.
ExtraFamilies = Callable[[bool], str]
Row = tuple[tuple[str, ...], float]  # label values and the sample value


class Metrics:
    """Tracker observer and pipeline hooks; renders the exposition at scrape time."""

    def __init__(
        self,
        *,
        max_label_values: int = 1000,
        task_buckets: Sequence[float] = DEFAULT_TASK_BUCKETS,
        node_buckets: Sequence[float] = DEFAULT_NODE_BUCKETS,
        lag_buckets: Sequence[float] = DEFAULT_LAG_BUCKETS,
        exemplars: bool = False,
        tracker: Tracker | None = None,
        status: StreamStatus | None = None,
        span_stats: SpanStats | None = None,
        process: ExtraFamilies | None = None,
    ) -> None:
        self.limit = LabelLimiter(max_label_values)
        self.process = process
        self.exemplars = exemplars
        self.tracker = tracker
        self.status = status
        self.span_stats = span_stats
        self.state_save_failures = 0  # counted by the checkpoint job
        # The HTTP server's refused connections by reason: its own counter, once it is serving.
        self.connections_refused: Mapping[str, int] = {}
        # Raw (type, task label[, node label, node type]) -> the counter cell it adds to. A value
        # folded into __other__ is not kept as a key, so the map stays bounded.
        self._cells: dict[tuple[str, ...], Cell] = {}
        self._counters: dict[str, dict[tuple[str, ...], Cell]] = {t: {} for t in UPDATE_TYPES}
        self._task_duration = Histogram(TASK_DURATION, task_buckets)
        self._node_duration = Histogram(NODE_DURATION, node_buckets)
        self._lag = Histogram(LAG, lag_buckets)
        self._lag_series = self._lag.series_for(())
        # Raw (task label, node label, node type, outcome) -> its node duration series.
        self._node_series: dict[tuple[str, str, str, str], Series] = {}
        self._skipped = dict.fromkeys(SKIP_REASONS, 0)
        # Texts cut to their byte bound, by field: the decoder and the state file reader add to
        # it in place.
        self.values_cut: dict[str, int] = dict.fromkeys(CUT_FIELDS, 0)
        self._loop_lag = Histogram(LOOP_LAG, DEFAULT_LOOP_LAG_BUCKETS)
        self._loop_lag_series = self._loop_lag.series_for(())
        self._gauge_keys: tuple[set[tuple[str, ...]], set[tuple[str, ...]]] = (set(), set())

    # -- tracker observer ----------------------------------------------------------------

    def on_update(self, update: Update, task: TaskState) -> None:
        """Count the update literally, by type, task name and node."""
        node = update.node
        if node is None:
            key: tuple[str, ...] = (update.type, task.name or "unnamed")
        else:
            key = (update.type, task.name or "unnamed", node.alias or node.id, node.type)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cell_for(key)
        cell.value += 1

    def _cell_for(self, key: tuple[str, ...]) -> Cell:
        kind, *raw = key
        family = UPDATE_FAMILIES[kind]
        values = tuple(self.limit(n, v) for n, v in zip(family.labels, raw, strict=True))
        cells = self._counters[kind]
        cell = cells.get(values)
        if cell is None:
            cell = cells[values] = Cell(values, family.labels)
            self._first_seen(values)
        if values == tuple(raw):
            self._cells[key] = cell
        return cell

    def restored(self, tasks: Iterable[TaskState]) -> None:
        """Create the zero series of tasks and open node attempts restored from a state file.

        Their outcomes arrive after the restart; a replaced exporter (a new instance to
        Prometheus) must expose those counters at zero before, or rate() misses the first.
        """
        for task in tasks:
            key: tuple[str, ...] = (TASK_START, task.label)
            if key not in self._cells:
                self._cell_for(key)
            for node, _number, _start in task.open.values():
                key = (NODE_START, task.label, node.label, node.type)
                if key not in self._cells:
                    self._cell_for(key)

    def _first_seen(self, values: tuple[str, ...]) -> None:
        """Create the zero series of a (folded) label set seen for the first time."""
        counters = self._counters
        for kinds, key in ((TASK_COUNTERS, values[:1]), (NODE_COUNTERS, values)):
            if len(key) != len(UPDATE_FAMILIES[kinds[0]].labels):
                continue
            for kind in kinds:
                cells = counters[kind]
                if key not in cells:
                    cells[key] = Cell(key, UPDATE_FAMILIES[kind].labels)
        # In-progress gauges show every label set ever seen, at 0 when nothing runs.
        self._gauge_keys[0].add(values[:1])
        if len(values) == 3:
            self._gauge_keys[1].add(values)

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        """Observe one node attempt's duration."""
        node = attempt.node
        key = (task.name or "unnamed", node.alias or node.id, node.type, attempt.outcome)
        series = self._node_series.get(key)
        if series is None:
            series = self._node_series_for(key)
        end = attempt.end
        seconds = end - attempt.start
        if self.exemplars:
            trace = trace_id_hex(task.task_id, task.root_id)
            self._node_duration.observe(series, seconds, trace, end)
        else:
            # `Histogram.observe` inlined for the case without exemplars: one per node end.
            series.counts[bisect_left(self._node_duration.bounds, seconds)] += 1
            series.sum += seconds

    def _node_series_for(self, key: tuple[str, str, str, str]) -> Series:
        values = (
            self.limit("task_name", key[0]),
            self.limit("node", key[1]),
            self.limit("node_type", key[2]),
            key[3],
        )
        series = self._node_duration.series_for(values)
        if values == key:  # as for counters: folded values are not kept as keys
            self._node_series[key] = series
        return series

    def on_task_finished(self, task: FinishedTask) -> None:
        """Observe a task's duration when its start was seen and it really finished."""
        if task.incomplete or task.evicted:
            return
        values = (self.limit("task_name", task.name or "unnamed"), task.outcome)
        histogram = self._task_duration
        trace = trace_id_hex(task.task_id, task.root_id) if self.exemplars else None
        histogram.observe(histogram.series_for(values), task.end - task.start, trace, task.end)

    # -- pipeline hooks ------------------------------------------------------------------

    def skipped(self, reason: str) -> None:
        """Count an event that was not applied."""
        self._skipped[reason] = self._skipped.get(reason, 0) + 1

    def observe_lags(self, lags: list[float]) -> None:
        """Observe arrival time minus server time of updates, in the order they came."""
        # `Histogram.observe` inlined: this takes every update's lag and has no exemplar. The
        # sum is added to in order, as one observation at a time would.
        series = self._lag_series
        counts = series.counts
        bounds = self._lag.bounds
        total = series.sum
        for lag in lags:
            seconds = 0.0 if lag < 0.0 else lag  # max(lag, 0.0) without a call
            counts[bisect_left(bounds, seconds)] += 1
            total += seconds
        series.sum = total

    def observe_loop_lag(self, seconds: float) -> None:
        """Observe how late the event loop ran a timer."""
        series = self._loop_lag_series
        series.counts[bisect_left(self._loop_lag.bounds, seconds)] += 1
        series.sum += seconds

    def loop_lag_quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile `q` of the loop lags seen (None when
        none was seen; infinity past the last bucket)."""
        counts = self._loop_lag_series.counts
        total = sum(counts)
        if not total:
            return None
        rank = q * total
        seen = 0
        for bound, count in zip((*self._loop_lag.bounds, float("inf")), counts, strict=True):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")

    # -- reading -------------------------------------------------------------------------

    def updates_by_type(self) -> dict[str, int]:
        """Valid updates counted so far, by type."""
        return {t: sum(c.value for c in cells.values()) for t, cells in self._counters.items()}

    def render(self, *, openmetrics: bool = False) -> str:
        """The whole exposition, in Prometheus text format or OpenMetrics."""
        out: list[str] = []
        add = out.append
        for kind, family in UPDATE_FAMILIES.items():
            add(header(family.name, "counter", family.help, openmetrics))
            name = f"{family.name}_total"
            out.extend(sample(name, c.labels, str(c.value)) for c in self._counters[kind].values())
        for histogram in self.histograms():
            add(header(histogram.family.name, "histogram", histogram.family.help, openmetrics))
            out.extend(histogram.lines(openmetrics))
        for family, rows in (*self._in_progress(), *self._self_scalars()):
            add(header(family.name, family.kind, family.help, openmetrics))
            name = f"{family.name}_total" if family.kind == "counter" else family.name
            for values, value in rows:
                add(sample(name, label_string(family.labels, values), fmt_float(float(value))))
        if self.process is not None:
            add(self.process(openmetrics))
        if openmetrics:
            add("# EOF\n")
        return "".join(out)

    def histograms(self) -> tuple[Histogram, ...]:
        """The histogram families, with their series."""
        return (self._task_duration, self._node_duration, self._lag, self._loop_lag)

    def scalars(self) -> Iterator[tuple[Family, list[Row]]]:
        """Every counter and gauge family with its current series, for outputs besides /metrics."""
        for kind, family in UPDATE_FAMILIES.items():
            yield family, [(c.values, float(c.value)) for c in self._counters[kind].values()]
        yield from self._in_progress()
        yield from self._self_scalars()

    def _in_progress(self) -> Iterator[tuple[Family, list[Row]]]:
        tasks, nodes, oldest = self.tracker.progress() if self.tracker is not None else ({}, {}, {})
        limit = self.limit
        for family, counts, seen in (
            (TASKS_IN_PROGRESS, tasks, self._gauge_keys[0]),
            (NODES_IN_PROGRESS, nodes, self._gauge_keys[1]),
        ):
            folded: dict[tuple[str, ...], float] = {}
            for raw, n in counts.items():
                raw_values = (raw,) if isinstance(raw, str) else raw
                key = tuple(limit(ln, v) for ln, v in zip(family.labels, raw_values, strict=True))
                folded[key] = folded.get(key, 0) + n
            seen.update(folded)
            yield family, [(key, folded.get(key, 0.0)) for key in sorted(seen)]
        # Absent for a name with nothing in flight: no start to report (a 0 would be 1970).
        starts: dict[tuple[str, ...], float] = {}
        for raw_name, start in oldest.items():
            key = (limit("task_name", raw_name),)
            if start < starts.get(key, start + 1.0):
                starts[key] = start
        yield OLDEST_IN_PROGRESS, sorted(starts.items())

    def _self_scalars(self) -> Iterator[tuple[Family, list[Row]]]:
        def by(values: Iterable[tuple[str, int]]) -> list[Row]:
            return [((label,), float(n)) for label, n in values]

        tracker, status = self.tracker, self.status
        stats = tracker.stats if tracker is not None else None
        reconnects = status.reconnects if status is not None else {}
        exported, dropped = self.span_stats() if self.span_stats else (0, 0)
        yield UPDATES, by(self.updates_by_type().items())
        yield SKIPPED, by(self._skipped.items())
        yield INCOMPLETE, [((), stats.incomplete if stats is not None else 0)]
        yield EVICTED, [((), stats.evicted if stats is not None else 0)]
        yield NEGATIVE, [((), stats.clamped if stats is not None else 0)]
        yield TRACKED, [((), len(tracker) if tracker is not None else 0)]
        yield CONNECTED, [((), 1 if status is not None and status.connected else 0)]
        yield RECONNECTS, by((r, reconnects.get(r, 0)) for r in RECONNECT_REASONS)
        yield POSITION, [((), (status.position or 0) if status is not None else 0)]
        # Absent until known: a 0 would read as an update 57 years old.
        last = status.last_update_timestamp if status is not None else None
        yield LAST_UPDATE, [] if last is None else [((), last)]
        yield OVERFLOW, by((n, self.limit.overflow.get(n, 0)) for n in NODE)
        yield SPANS_EXPORTED, [((), exported)]
        yield SPANS_DROPPED, [((), dropped)]
        yield STATE_SAVE_FAILURES, [((), self.state_save_failures)]
        yield BUILD_INFO, [((__version__, platform.python_version()), 1)]
        yield VALUES_CUT, by(self.values_cut.items())
        yield (
            ATTEMPTS_DROPPED,
            [
                (("nodes_per_task",), stats.nodes_dropped if stats is not None else 0),
                (("attempts_per_task",), stats.attempts_dropped if stats is not None else 0),
            ],
        )
        refused = self.connections_refused
        yield CONNECTIONS_REFUSED, by((r, refused.get(r, 0)) for r in REFUSAL_REASONS)
