"""The exporter's stream, pipeline, tracker and metrics in-process, against a scripted server.

Nothing is replaced: `WatchStream` speaks real HTTP to a `ScriptedServer` on 127.0.0.1 and
hands its events to the real `Pipeline`; only the backoff is shortened so faults are quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

import httpx
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import OPTIONS
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.core.units import parse_duration
from exporter.metrics.store import Metrics
from exporter.requence.pipeline import Pipeline
from exporter.requence.sse import RawEvent
from exporter.requence.stream import Backoff, WatchStream
from exporter.requence.token import Credentials
from exporter.serving.endpoints import ExporterEndpoints
from exporter.simulator.protocol import WATCH_PATH, RecordedRequest
from exporter.simulator.scripted import Event, ScriptedServer

SINCE = "2026-11-22T09:00:00.000Z"
# How long `run` lets a quiet stream's updates gather between reads, by default.
GATHER = parse_duration(next(str(o.default) for o in OPTIONS if o.flag == "--gather-reads"))
BEARER = "rig-bearer"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def at(seconds: float) -> str:
    """An ISO 8601 server timestamp `seconds` after 10:00 on the test day."""
    minutes, rest = divmod(seconds, 60)
    return f"2026-11-22T10:{int(minutes):02d}:{rest:06.3f}Z"


def update(
    kind: str, task: str, seconds: float, name: str | None = "invoice", **extra: Any
) -> dict[str, Any]:
    """One valid update's data object."""
    return {
        "task_id": task,
        "timestamp": at(seconds),
        "updateId": f"{task}-{kind}-{seconds}",
        "name": name,
        "rootTaskId": None,
        **extra,
    }


def ev(
    kind: str,
    task: str,
    seconds: float,
    name: str | None = "invoice",
    position: int | None = None,
    **extra: Any,
) -> Event:
    """One valid scripted event."""
    return Event(kind, update(kind, task, seconds, name, **extra), position)


def parse(text: str) -> Samples:
    """A Prometheus text exposition as {(sample name, labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Rig:
    """Runs `WatchStream.run()` against `server` until the test is done with it.

    `reader` is the stream's (`auto` by default: `default_reader`, which a test module may set
    to run its tests through each reader); `trust_env` lets the client honour proxy variables.
    """

    default_reader = "auto"

    def __init__(
        self,
        server: ScriptedServer,
        *,
        api_url: str | None = None,
        read_timeout: float = 5.0,
        max_event_bytes: int = 16 * 1024 * 1024,
        reader: str | None = None,
        trust_env: bool = False,
        gather: float | None = None,
        backpressure: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self.server = server
        self.reader = reader or self.default_reader
        self._trust_env = trust_env
        self._gather = GATHER if gather is None else gather
        self._backpressure = backpressure
        self.status = StreamStatus()
        self.metrics = Metrics(status=self.status)
        self.tracker = Tracker(observers=[self.metrics], keep_attempts=False)
        self.metrics.tracker = self.tracker
        self.pipeline = Pipeline(tracker=self.tracker, metrics=self.metrics, status=self.status)
        self.endpoints = ExporterEndpoints(
            metrics=self.metrics,
            tracker=self.tracker,
            status=self.status,
            is_alive=lambda: True,
            is_ready=lambda: True,
        )
        self._api_url = api_url
        self._read_timeout = read_timeout
        self._max_event_bytes = max_event_bytes
        self._client: httpx.AsyncClient | None = None
        self.task: asyncio.Task[None] | None = None
        self.reads = 0

    def _feed(self, events: Sequence[RawEvent], arrival: float) -> None:
        self.reads += 1  # the reads that completed events
        self.pipeline.feed(events, arrival)

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(trust_env=self._trust_env)
        credentials = Credentials(
            bearer_token=self.server.bearer or BEARER,
            api_url=self._api_url or self.server.base_url,
        )
        self.stream = WatchStream(
            client=self._client,
            credentials=credentials,
            since=SINCE,
            status=self.status,
            handler=self._feed,
            read_timeout=self._read_timeout,
            max_event_bytes=self._max_event_bytes,
            backoff=Backoff(initial=0.01, maximum=0.05),
            reader=self.reader,
            gather=self._gather,
            backpressure=self._backpressure,
        )
        self.task = asyncio.create_task(self.stream.run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self._client is not None:
            await self._client.aclose()

    async def wait_for(
        self, condition: Callable[[], bool], *, what: str, within: float = 15.0
    ) -> None:
        """Poll `condition` until true; fail after `within` seconds or if the stream ended."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if condition():
                return
            if self.task is not None and self.task.done():
                raise AssertionError(f"the stream ended while waiting for {what}: {self.task!r}")
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; status: {self.status}")

    async def wait_position(self, position: int, within: float = 15.0) -> None:
        """Wait until the update at `position` was processed."""
        await self.wait_for(
            lambda: self.status.position == position, what=f"position {position}", within=within
        )

    def samples(self) -> Samples:
        """One scrape of the real renderer, parsed."""
        return parse(self.metrics.render())

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value from a fresh scrape."""
        return self.samples().get((name, frozenset(labels.items())))

    def reconnects(self) -> dict[str, float]:
        """requence_exporter_reconnects_total by reason, from a scrape."""
        return {
            dict(labels)["reason"]: value
            for (name, labels), value in self.samples().items()
            if name == "requence_exporter_reconnects_total"
        }

    def skipped(self) -> dict[str, float]:
        """requence_exporter_updates_skipped_total by reason, from a scrape."""
        return {
            dict(labels)["reason"]: value
            for (name, labels), value in self.samples().items()
            if name == "requence_exporter_updates_skipped_total"
        }

    def watch_requests(self) -> list[RecordedRequest]:
        """The watch-all requests the server received, in order."""
        return [r for r in self.server.requests if r.path == WATCH_PATH]


def counters(samples: Samples) -> Iterator[tuple[str, dict[str, str], float]]:
    """The update counters (requence_tasks_* / nodes_* / node_updates totals) in a scrape."""
    for (name, labels), value in samples.items():
        if name.startswith(("requence_tasks_", "requence_nodes_", "requence_node_updates")) and (
            name.endswith("_total")
        ):
            yield name, dict(labels), value


TASKS = 5
NODE = {"id": "node-fetch", "type": "service", "alias": "fetch"}


def workload(tasks: int = TASKS, first: int = 0) -> list[Event]:
    """`tasks` tasks one after the other, each taskStart, nodeStart, nodeEnd, taskEnd."""
    events = []
    for i in range(first, first + tasks):
        task = f"task-{i}"
        base = 10.0 * i
        events += [
            ev("taskStart", task, base, input={"n": i}),
            ev("nodeStart", task, base + 1, node=NODE),
            ev("nodeEnd", task, base + 3, node=NODE),
            ev("taskEnd", task, base + 4, result={"ok": True}, exit="done"),
        ]
    return events


def assert_counted_once(rig: Rig, tasks: int = TASKS, **skipped: int) -> None:
    """Every update of `workload(tasks)` counted exactly once, and nothing else counted."""
    samples = rig.samples()
    found = {
        (name, tuple(sorted(labels.items()))): value for name, labels, value in counters(samples)
    }
    node = (("node", "fetch"), ("node_type", "service"), ("task_name", "invoice"))
    assert found == {
        ("requence_tasks_started_total", (("task_name", "invoice"),)): tasks,
        ("requence_tasks_ended_total", (("task_name", "invoice"),)): tasks,
        ("requence_nodes_started_total", node): tasks,
        ("requence_nodes_ended_total", node): tasks,
        # The other outcomes exist at zero from the first update of their label set.
        ("requence_tasks_errored_total", (("task_name", "invoice"),)): 0,
        ("requence_tasks_aborted_total", (("task_name", "invoice"),)): 0,
        ("requence_nodes_errored_total", node): 0,
        ("requence_nodes_deferred_total", node): 0,
    }
    duration = frozenset({("task_name", "invoice"), ("outcome", "ended")})
    assert samples[("requence_task_duration_seconds_count", duration)] == tasks
    assert samples[("requence_task_duration_seconds_sum", duration)] == 4.0 * tasks
    for kind in ("taskStart", "nodeStart", "nodeEnd", "taskEnd"):
        labels = frozenset({("type", kind)})
        assert samples[("requence_exporter_updates_total", labels)] == tasks
    assert {r: n for r, n in rig.skipped().items() if n} == skipped
    assert samples[("requence_exporter_tracked_tasks", frozenset())] == 0
