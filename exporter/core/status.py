"""The stream's connection status: written by the stream, read by metrics, /status and logs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

__all__ = ["RECONNECT_REASONS", "StreamStatus"]

# Why the stream reconnected; every reason is exported from the start, at zero.
RECONNECT_REASONS: Final = (
    "unreachable",  # refused, DNS, TLS, 502/503/504
    "timeout",  # connected but silent past the read timeout
    "dropped",  # the server closed the stream or it broke mid-event
    "unauthorized",  # 401/403 after the stream had worked once
    "http_error",  # any other unexpected HTTP status
    "not_sse",  # a 200 that was not an event stream (a proxy's page)
)


@dataclass
class StreamStatus:
    """What the stream knows about its connection; updated in place, read at scrape time."""

    connected: bool = False
    position: int | None = None
    since: str = ""
    last_update_timestamp: float | None = None  # server time of the last update processed
    last_update_arrival: float | None = None  # wall time it arrived
    connections: int = 0
    position_resets: int = 0
    reconnects: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    reader: str = ""  # the stream reader in use, "llhttp" or "httpx" (set by the stream)

    def reconnected(self, reason: str, error: str | None = None) -> None:
        """Record a lost or refused connection."""
        self.connected = False
        self.reconnects[reason] += 1
        self.last_error = error
