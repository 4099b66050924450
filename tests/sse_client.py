"""A small watch-all client for tests, built on httpx and httpx-sse (a real SSE parser)."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

PAST = "2000-01-01T00:00:00.000Z"


def watch_body(since: str = PAST, last_position: int | None = None) -> dict[str, Any]:
    """The JSON body a watcher sends."""
    body: dict[str, Any] = {"since": since}
    if last_position is not None:
        body["lastPosition"] = last_position
    return body


async def read_events(
    client: httpx.AsyncClient,
    base_url: str,
    *,
    bearer: str,
    limit: int | None = None,
    since: str = PAST,
    last_position: int | None = None,
    received: list[ServerSentEvent] | None = None,
) -> list[ServerSentEvent]:
    """Stream events until `limit` arrived or the stream ends; errors propagate.

    Events land in `received` as they arrive, so a caller still sees them when the stream fails.
    """
    events = received if received is not None else []
    async with aconnect_sse(
        client,
        "POST",
        f"{base_url}/task/watch-all",
        json=watch_body(since, last_position),
        headers={"Authorization": f"Bearer {bearer}"},
    ) as source:
        source.response.raise_for_status()
        async with contextlib.aclosing(source.aiter_sse()) as stream:
            async for event in stream:
                events.append(event)
                if limit is not None and len(events) >= limit:
                    break
    return events
