"""Healthy history for the fire drills, so an incident starts after half an hour of normal work.

The SLO windows are sums of the base rates the rules record every slo_interval; a Prometheus
that just started has none, and an incident then looks worse than it is (nothing dilutes it).
This runs a drill's normal workload offline through the exporter's own tracker for `seconds`,
counts what finished per task name every second, turns that into the base rates the rules would
have recorded (the same windows), and writes them as OpenMetrics for `promtool tsdb
create-blocks-from openmetrics`, ending where the live run begins.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import TextIO

from exporter.core.tasks import FinishedTask, NodeAttempt, TaskState
from exporter.core.tracker import Tracker
from exporter.core.updates import Update
from exporter.requence.decode import decode_update
from exporter.simulator.workload import Workload

__all__ = ["history_rates", "write_history"]


class _Finished:
    """A tracker observer keeping the finished tasks' (end offset, name, outcome, seconds)."""

    def __init__(self) -> None:
        self.tasks: list[tuple[float, str, str, float]] = []
        self.offset = 0.0

    def on_update(self, update: Update, task: TaskState) -> None:
        pass

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        pass

    def on_task_finished(self, task: FinishedTask) -> None:
        if task.outcome in ("ended", "errored") and not task.incomplete:
            name = task.name or "unnamed"
            self.tasks.append((self.offset, name, task.outcome, task.end - task.start))


def _finished(seconds: float, time_scale: float) -> list[tuple[float, str, str, float]]:
    finished = _Finished()
    tracker = Tracker(observers=[finished], keep_attempts=False)
    for position, update in enumerate(Workload(1, rate=50.0, time_scale=time_scale), 1):
        if update.offset >= seconds:
            break
        decoded = decode_update(update.type, json.dumps(update.data).encode(), position)
        if isinstance(decoded, Update):
            finished.offset = update.offset
            tracker.apply(decoded)
    return finished.tasks


def _rates(
    tasks: list[tuple[float, str, str, float]], seconds: int, window: int, slow: dict[str, float]
) -> Iterator[tuple[str, str, int, float]]:
    """(series name, task name, second, rate) of the base rates at every second."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (seconds + 1))
    for offset, name, outcome, duration in tasks:
        second = int(offset) + 1
        if second > seconds:
            continue
        counts[("error_events", name)][second] += 1
        counts[("error_bad", name)][second] += outcome == "errored"
        if name in slow:
            counts[("latency_events", name)][second] += 1
            counts[("latency_bad", name)][second] += duration > slow[name]
    for (kind, name), per_second in counts.items():
        total = [0] * (seconds + 1)
        for i in range(1, seconds + 1):
            total[i] = total[i - 1] + per_second[i]
        for second in range(window, seconds + 1):
            rate = (total[second] - total[second - window]) / window
            yield f"task_name:requence_slo_{kind}:rate_base", name, second, rate


def history_rates(
    *, time_scale: float, seconds: int, window: int, slow: dict[str, float]
) -> list[tuple[str, str, int, float]]:
    """The base rates of `seconds` of a drill's normal workload, every second: (series, task
    name, second, rate). `slow` maps a task name with a latency objective to its threshold in
    seconds (a task is slow when it took longer)."""
    return sorted(_rates(_finished(seconds, time_scale), seconds, window, slow))


def write_history(
    out: TextIO, rows: list[tuple[str, str, int, float]], *, job: str, seconds: int, end: float
) -> int:
    """Write `rows` (history_rates) as `job`'s series ending at unix time `end`."""
    start = end - seconds
    for metric, name, second, rate in rows:
        labels = f'{{job="{job}",task_name={json.dumps(name)}}}'
        out.write(f"{metric}{labels} {rate:.6g} {start + second:.3f}\n")
    return len(rows)
