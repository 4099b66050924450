"""The OTLP metrics push against hostile collectors on 127.0.0.1: the loop never waits on them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from exporter.core.status import StreamStatus
from exporter.metrics.otlp_push import OtlpMetricsPusher, build_metric_exporter, build_resource
from exporter.metrics.store import Metrics
from exporter.traces.otlp_config import TracingSettings
from tests.otlp_receiver import hostile_endpoint, http_receiver, hung_endpoint


def pusher_for(url: str, wait: float) -> OtlpMetricsPusher:
    env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{url}/v1/metrics"}
    env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "2000"
    return OtlpMetricsPusher(
        Metrics(status=StreamStatus()),
        build_metric_exporter(env),
        build_resource(TracingSettings()),
        interval=3600.0,
        wait=wait,
        environ=env,
    )


@pytest.fixture
async def heartbeat() -> AsyncIterator[list[int]]:
    """Counts turns of the event loop while a test runs."""
    beats = [0]

    async def beat() -> None:
        while True:
            beats[0] += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(beat())
    yield beats
    task.cancel()


async def test_a_hung_collector_costs_pushes_not_the_loop(heartbeat: list[int]) -> None:
    with hung_endpoint() as url:
        pusher = pusher_for(url, wait=0.2)
        async with asyncio.timeout(30):
            await pusher.push()  # gives up waiting; the thread finishes on its own
            await pusher.push()  # the first still runs: skipped, not piled up
        assert (pusher.pushed, pusher.failed) == (0, 2)
        assert heartbeat[0] > 1


@pytest.mark.slow
async def test_an_endless_answer_is_not_read_to_its_end(heartbeat: list[int]) -> None:
    def endless(conn: socket.socket) -> None:
        while True:
            conn.sendall(b"\0" * 65536)

    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n"
    with hostile_endpoint(head, endless) as url:
        pusher = pusher_for(url, wait=20.0)
        async with asyncio.timeout(30):
            await pusher.push()
            await pusher.aclose()
    assert (pusher.pushed, pusher.failed) == (2, 0)  # a 200 is a delivery


async def test_pushes_arrive_at_a_working_collector() -> None:
    with http_receiver() as (url, received):
        pusher = pusher_for(url, wait=20.0)
        await pusher.push()
        await pusher.aclose()
        assert (pusher.pushed, pusher.failed) == (2, 0)
        assert len(received.metrics) == 2
        names = {m.name for rm in received.metrics[0].resource_metrics
                 for sm in rm.scope_metrics for m in sm.metrics}  # fmt: skip
        assert "requence_exporter_tracked_tasks" in names
