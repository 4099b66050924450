"""The benchmark stream: a seeded realistic workload rendered once to SSE bytes.

The same events are framed two ways as HTTP/1.1 chunked bodies: coalesced (large chunks, as a
server that flushes in bulk writes them) and one event per chunk (as a server writing each
update as it happens). HTTP clients hand a chunked body on chunk by chunk, so the framing is
what decides how many reads the client does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from exporter.simulator.protocol import sse_event
from exporter.simulator.workload import Workload

__all__ = ["COALESCED_CHUNK", "Rendered", "render", "sse_events"]

COALESCED_CHUNK = 64 * 1024  # bytes per chunk in the coalesced framing


@dataclass(frozen=True)
class Rendered:
    """The pre-rendered stream: its events and both chunked framings of them."""

    events: int
    last_position: int
    event_bytes: int  # the SSE bytes of all events, without chunk framing
    coalesced: bytes
    per_event: bytes
    task_ids: int  # distinct tasks in the stream


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def sse_events(events: int, *, seed: int = 7, rate: float = 100.0) -> Iterator[tuple[str, bytes]]:
    """The first `events` updates of the seeded workload, positions starting at 1: each one's
    task id and SSE bytes."""
    for position, update in enumerate(itertools.islice(Workload(seed, rate=rate), events), 1):
        yield update.data["task_id"], sse_event(update.type, position, orjson.dumps(update.data))


def render(events: int, *, seed: int = 7, rate: float = 100.0) -> Rendered:
    """Render the first `events` updates of the seeded workload, positions starting at 1."""
    rendered = []
    tasks = set()
    for task_id, event in sse_events(events, seed=seed, rate=rate):
        tasks.add(task_id)
        rendered.append(event)
    coalesced = []
    group: list[bytes] = []
    size = 0
    for event in rendered:
        group.append(event)
        size += len(event)
        if size >= COALESCED_CHUNK:
            coalesced.append(_chunk(b"".join(group)))
            group, size = [], 0
    if group:
        coalesced.append(_chunk(b"".join(group)))
    return Rendered(
        events=len(rendered),
        last_position=len(rendered),
        event_bytes=sum(map(len, rendered)),
        coalesced=b"".join(coalesced),
        per_event=b"".join(_chunk(event) for event in rendered),
        task_ids=len(tasks),
    )
