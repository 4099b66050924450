"""Why the HTTP server turned a connection away: written by the server, read by the metrics."""

from __future__ import annotations

from typing import Final

__all__ = ["REFUSAL_REASONS"]

# Each reason (a metric label, every one exported from the start at zero) and how the log says it.
REFUSAL_REASONS: Final = {
    "max_connections": "too many connections",
    "max_connections_per_client": "too many connections from one address",
    "replaced_by_newer": "dropped for a newer connection",
    "out_of_file_descriptors": "out of file descriptors",
}
