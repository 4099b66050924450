"""Updates for the traces tests, built in position order, and a sink posting to a receiver."""

from __future__ import annotations

import uuid

from exporter.core.updates import Node, Update
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.sink import TraceSink, build_trace_sink

T0_MS = 1_763_805_600_000  # 2025-11-22T10:00:00Z, in milliseconds


def seconds(ms: int) -> float:
    """A server timestamp `ms` milliseconds after T0, as the decoder produces it."""
    return (T0_MS + ms) / 1000.0


class Script:
    """Builds updates for one task in position order."""

    position = 0

    def __init__(self, task_id: str, name: str | None, root_id: str | None = None) -> None:
        self.task_id = task_id
        self.name = name
        self.root_id = root_id

    def __call__(
        self, kind: str, ms: int, node: Node | None = None, message: str | None = None
    ) -> Update:
        Script.position += 1
        return Update(
            Script.position,
            kind,
            self.task_id,
            seconds(ms),
            self.name,
            self.root_id,
            node,
            message,
            str(uuid.uuid4()),
        )


def node(alias: str | None, node_type: str = "service") -> Node:
    """A node with a fresh UUID."""
    return Node(str(uuid.uuid4()), node_type, alias)


def sink_for(endpoint: str, **overrides: float) -> TraceSink:
    """A sink posting to a receiver; a long schedule delay so only shutdown flushes."""
    settings = TracingSettings(
        enabled=True,
        endpoint=endpoint + "/v1/traces",
        timeout=overrides.pop("timeout", 5.0),
        schedule_delay=overrides.pop("schedule_delay", 60.0),
        max_queue_size=int(overrides.pop("max_queue_size", 2048)),
        max_export_batch_size=int(overrides.pop("max_export_batch_size", 512)),
        block_timeout=overrides.pop("block_timeout", 5.0),
    )
    assert not overrides
    sink = build_trace_sink(settings)
    assert sink is not None
    return sink


def simple_tasks(count: int) -> list[Update]:
    """`count` tasks of one node each: two spans per task."""
    out = []
    for _ in range(count):
        script = Script(str(uuid.uuid4()), "bulk")
        n = node("only")
        out += [
            script("taskStart", 0),
            script("nodeStart", 1, n),
            script("nodeEnd", 2, n),
            script("taskEnd", 3),
        ]
    return out
