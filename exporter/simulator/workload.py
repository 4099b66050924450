"""A deterministic, realistic stream of watch-all updates generated from a seed.

Tasks arrive as a Poisson process; each runs its template's stages (parallel nodes interleave),
with retries (`nodeDefer` then a new `nodeStart`), node and task failures, aborts that leave
nodes open, and `reference` nodes running sub-tasks. Time is virtual: every update comes with its
offset in seconds from the start, and updates come in time order.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, NamedTuple

from exporter.simulator.payloads import node_payload, task_input, task_result
from exporter.simulator.templates import TEMPLATES, NodeSpec, Template, random_uuid, stable_uuid

__all__ = ["DEFAULT_EPOCH", "Workload", "WorkloadUpdate", "format_timestamp"]

DEFAULT_EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z
_TINY = 0.002  # seconds of workflow time between causally ordered updates
_MAX_ATTEMPTS = 3
_ERRORS = (
    "connection reset by peer",
    "timed out after 30s",
    "upstream answered HTTP 500",
    "validation failed: total mismatch",
    "quota exceeded",
)
_DEFER_REASONS = ("rate limited, retrying later", "waiting for retry", "upstream unavailable")
_ABORT_REASONS = ("aborted by user", "cancelled via API", "superseded by a newer task")
# The first top tasks of every run, so that any seed shows every update type and node type within
# seconds: a clean task of the template with all four node kinds, then one deferral and retry,
# one failure and one abort. They run at median durations, so they finish early.
_OPENING = (
    ("invoice-processing", "clean"),
    ("image-resize", "defer"),
    ("image-resize", "error"),
    ("image-resize", "abort"),
)


class WorkloadUpdate(NamedTuple):
    """One update: seconds after the workload's start, its type and its `data` object."""

    offset: float
    type: str
    data: dict[str, Any]


def format_timestamp(epoch_seconds: float) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, the way Requence writes timestamps."""
    millis = math.floor(epoch_seconds * 1000)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


class _Run(NamedTuple):
    end: float
    outcome: str  # ended | errored | aborted
    message: str | None


class _Builder:
    """Simulates whole tasks into a list of (time, seq, type, data) events."""

    def __init__(self, rng: random.Random, templates: tuple[Template, ...], scale: float) -> None:
        self.rng = rng
        self.scale = scale
        self.by_name = {template.name: template for template in templates}
        self.events: list[tuple[float, int, str, dict[str, Any]]] = []
        self._seq = itertools.count()
        # An opening plan (see `_OPENING`) for the task being built, or None for a random one.
        self.plan: str | None = None
        self.adjust: Callable[[float, Template], Template] | None = None

    def emit(self, at: float, kind: str, task: dict[str, Any], **extra: Any) -> None:
        data = dict(task)
        data["updateId"] = random_uuid(self.rng)
        data.update(extra)
        self.events.append((at, next(self._seq), kind, data))

    def task(self, template: Template, t0: float, root_id: str | None) -> _Run:
        rng = self.rng
        if self.adjust is not None:
            template = self.adjust(t0, template)
        task_id = random_uuid(rng)
        task: dict[str, Any] = {"task_id": task_id, "timestamp": None, "updateId": None}
        if rng.random() >= template.unnamed_rate:
            task["name"] = template.name
        elif rng.random() < 0.5:
            task["name"] = None  # the creator set no name: it comes as null or not at all
        if root_id is not None or rng.random() < 0.5:
            # Top tasks carry a null rootTaskId or none at all: both occur in the wild.
            task["rootTaskId"] = root_id
        first = len(self.events)
        self.emit(t0, "taskStart", task, input=task_input(rng, template.name))
        run = self._stages(template, task, t0, root_id or task_id)
        # Users abort what they started: a sub-task stops only when its parent does.
        abort = root_id is None and rng.random() < template.abort_rate
        if (abort and self.plan is None) or (self.plan == "abort" and root_id is None):
            at = t0 + (run.end - t0) * rng.uniform(0.1, 0.9)
            self._cut(first, at, task_id)
            run = _Run(at + _TINY * self.scale, "aborted", rng.choice(_ABORT_REASONS))
        extra: dict[str, Any] = {}
        if rng.random() < template.ack_rate:
            extra["requireAck"] = True
        if run.outcome == "ended":
            result = task_result(rng, template.name)
            exit_name = rng.choice(("done", None))
            self.emit(run.end, "taskEnd", task, result=result, exit=exit_name, **extra)
        elif run.outcome == "errored":
            self.emit(run.end, "taskError", task, reason=run.message, **extra)
        else:
            self.emit(run.end, "taskAborted", task, reason=run.message, **extra)
        return run

    def _stages(self, template: Template, task: dict[str, Any], t0: float, root: str) -> _Run:
        t = t0 + self._tiny()
        for index, stage in enumerate(template.stages):
            first = len(self.events)
            ends: list[float] = []
            failures: list[tuple[float, str]] = []
            for position, spec in enumerate(stage):
                node = {
                    "id": stable_uuid(f"{template.name}/{index}/{position}"),
                    "type": spec.type,
                    "alias": spec.alias,
                }
                start = t + self._tiny() * position
                end, error = self._node(spec, node, task, start, root)
                ends.append(end)
                if error is not None and spec.critical:
                    failures.append((end, f"node {spec.alias or node['id']} failed: {error}"))
            if failures:
                at, message = min(failures)
                self._cut(first, at, task["task_id"])
                return _Run(at + _TINY * self.scale, "errored", message)
            t = max(ends) + self._tiny()
        return _Run(t, "ended", None)

    def _node(
        self, spec: NodeSpec, node: dict[str, str | None], task: dict[str, Any], t: float, root: str
    ) -> tuple[float, str | None]:
        """Run one node from `t`, with retries; return when it finished and its error if any."""
        rng = self.rng
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            self.emit(t, "nodeStart", task, node=node)
            if spec.sub_task is not None:
                sub = self.task(self.by_name[spec.sub_task], t + self._tiny(), root)
                end = sub.end + self._tiny()
                error = None if sub.outcome == "ended" else f"sub-task {sub.outcome}: {sub.message}"
            else:
                end = t + self._duration(spec)
                count = rng.randint(*spec.updates)
                if self.plan is not None:
                    count = max(count, min(1, spec.updates[1]))
                for at in sorted(rng.uniform(t, end) for _ in range(count)):
                    output = rng.choice(spec.outputs)
                    data = node_payload(rng, spec.alias, str(node["id"]), output, spec.bulky)
                    self.emit(at, "nodeUpdate", task, node=node, output=output, data=data)
                fate = self._fate(spec, attempt)
                if fate == "defer":
                    if attempt < _MAX_ATTEMPTS:
                        self.emit(
                            end, "nodeDefer", task, node=node, reason=rng.choice(_DEFER_REASONS)
                        )
                        t = end + self._backoff(attempt)
                        continue
                    error = "retries exhausted"
                elif fate == "error":
                    error = rng.choice(_ERRORS)
                else:
                    error = None
            if error is None:
                self.emit(end, "nodeEnd", task, node=node)
                return end, None
            self.emit(end, "nodeError", task, node=node, error=error)
            if rng.random() < 0.5:
                self.emit(end + self._tiny(), "nodeEnd", task, node=node)
            return end, error
        raise AssertionError("unreachable: the last attempt never defers")

    def _cut(self, first: int, at: float, owner: str) -> None:
        """Drop events after `at` from `first` on; sub-tasks still running there are aborted."""
        kept = [event for event in self.events[first:] if event[0] <= at]
        del self.events[first:]
        self.events.extend(kept)
        started: dict[str, dict[str, Any]] = {}
        for _at, _seq, kind, data in kept:
            if kind == "taskStart":
                started[data["task_id"]] = data
            elif kind in {"taskEnd", "taskError", "taskAborted"}:
                started.pop(data["task_id"], None)
        started.pop(owner, None)  # the task being cut sends its own terminal update
        for start in started.values():
            keys = ("task_id", "timestamp", "updateId", "name", "rootTaskId")
            task = {key: start[key] for key in keys if key in start}
            self.emit(at, "taskAborted", task, reason="parent task stopped")

    def _fate(self, spec: NodeSpec, attempt: int) -> str | None:
        """How an attempt ends: "defer", "error" or None (it succeeds); an opening plan decides."""
        roll = self.rng.random()
        if self.plan is None:
            if roll < spec.defer_rate:
                return "defer"
            return "error" if roll < spec.defer_rate + spec.error_rate else None
        if self.plan == "defer" and attempt == 1:
            self.plan = "clean"
            return "defer"
        if self.plan == "error" and spec.critical:
            self.plan = "clean"
            return "error"
        return None

    def _duration(self, spec: NodeSpec) -> float:
        if self.plan is not None:
            return spec.median * self.scale
        seconds = spec.median * math.exp(spec.sigma * self.rng.gauss(0.0, 1.0))
        return min(max(seconds, 0.001), 3600.0) * self.scale

    def _backoff(self, attempt: int) -> float:
        return 2.0 * float(2**attempt) * self.rng.uniform(0.5, 1.5) * self.scale

    def _tiny(self) -> float:
        return _TINY * self.scale


@cache
def updates_per_task(templates: tuple[Template, ...]) -> float:
    """Mean number of updates per top task (sub-tasks included), measured on a fixed sample."""
    rng = random.Random(0)
    builder = _Builder(rng, templates, 1.0)
    top = [template for template in templates if template.weight > 0]
    weights = [template.weight for template in top]
    samples = 400
    for _ in range(samples):
        builder.task(rng.choices(top, weights)[0], 0.0, None)
    return len(builder.events) / samples


class Workload:
    """An endless, seeded stream of updates averaging `rate` updates per second."""

    def __init__(
        self,
        seed: int,
        *,
        rate: float = 50.0,
        time_scale: float = 1.0,
        templates: tuple[Template, ...] = TEMPLATES,
        epoch: float = DEFAULT_EPOCH,
        adjust: Callable[[float, Template], Template] | None = None,
    ) -> None:
        if rate <= 0 or time_scale <= 0:
            raise ValueError("rate and time_scale must be positive")
        self.seed = seed
        self.rate = rate
        self.time_scale = time_scale
        self.templates = templates
        self.epoch = epoch
        self.task_rate = rate / updates_per_task(templates)
        # Fire drills change the template of tasks arriving at an offset (incidents.py).
        self.adjust = adjust

    def __iter__(self) -> Iterator[WorkloadUpdate]:
        rng = random.Random(self.seed)
        builder = _Builder(rng, self.templates, self.time_scale)
        builder.adjust = self.adjust
        top = [template for template in self.templates if template.weight > 0]
        weights = [template.weight for template in top]
        heap: list[tuple[float, int, str, dict[str, Any]]] = []
        arrival = rng.expovariate(self.task_rate)
        opening = [
            (builder.by_name[name], plan) for name, plan in _OPENING if name in builder.by_name
        ]
        while True:
            while not heap or heap[0][0] >= arrival:
                if opening:
                    template, builder.plan = opening.pop(0)
                    builder.task(template, arrival, None)
                    builder.plan = None
                else:
                    builder.task(rng.choices(top, weights)[0], arrival, None)
                for event in builder.events:
                    heapq.heappush(heap, event)
                builder.events.clear()
                arrival += rng.expovariate(self.task_rate)
            at, _seq, kind, data = heapq.heappop(heap)
            data["timestamp"] = format_timestamp(self.epoch + at)
            yield WorkloadUpdate(at, kind, data)
