"""Scrape cost: GET /metrics over real HTTP against the exporter's server, at a series count."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.core.updates import Node, Update
from exporter.metrics.process import ProcessMetrics
from exporter.metrics.store import Metrics
from exporter.serving.endpoints import ExporterEndpoints
from exporter.serving.http_server import HTTPServer

__all__ = ["populate", "scrape_bench", "series_count"]

_NODES = 10  # nodes per synthetic task name


def series_count(text: str) -> int:
    """Samples in an exposition (every line that is not a comment)."""
    return sum(1 for line in text.splitlines() if line and line[0] != "#")


def _group(tracker: Tracker, index: int, position: int) -> int:
    """One task of a new name through every node; returns the next position."""
    name = f"bench-task-{index}"
    task_id = f"task-{index}"
    t = 1767225600.0 + index

    def apply(kind: str, at: float, node: Node | None = None) -> None:
        nonlocal position
        position += 1
        tracker.apply(Update(position, kind, task_id, at, name, None, node, None, None))

    apply("taskStart", t)
    for k in range(_NODES):
        node = Node(f"node-{k}", "service", f"step-{k}")
        apply("nodeStart", t + 0.001 * k, node)
        apply("nodeEnd", t + 0.1 * (k + 1), node)
    apply("taskEnd", t + 2.0)
    return position


def populate(series: int) -> tuple[Metrics, Tracker, StreamStatus]:
    """Metrics, its tracker and status, holding about `series` samples."""
    status = StreamStatus()
    metrics = Metrics(max_label_values=1_000_000, status=status, process=ProcessMetrics())
    tracker = Tracker(observers=[metrics])
    metrics.tracker = tracker
    base = series_count(metrics.render())
    position = _group(tracker, 0, 0)
    per_group = series_count(metrics.render()) - base
    for index in range(1, max(1, round((series - base) / per_group))):
        position = _group(tracker, index, position)
    return metrics, tracker, status


async def scrape_bench(series: int, repetitions: int) -> dict[str, Any]:
    """Median seconds for a full GET /metrics, and for rendering alone, at `series` samples."""
    metrics, tracker, status = populate(series)
    endpoints = ExporterEndpoints(
        metrics=metrics,
        tracker=tracker,
        status=status,
        is_alive=lambda: True,
        is_ready=lambda: True,
    )
    server = HTTPServer(endpoints)
    host, port = await server.start("127.0.0.1", 0)
    http: list[float] = []
    render: list[float] = []
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=60.0) as client:
            for _ in range(repetitions):
                start = time.perf_counter()
                response = await client.get(f"http://{host}:{port}/metrics")
                http.append(time.perf_counter() - start)
                response.raise_for_status()
                start = time.perf_counter()
                metrics.render()
                render.append(time.perf_counter() - start)
            counted = series_count(response.text)
    finally:
        await server.aclose()
    return {
        "series": counted,
        "bytes": len(response.content),
        "http_seconds": statistics.median(http),
        "render_seconds": statistics.median(render),
        "http_runs": http,
    }
