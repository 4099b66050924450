"""From raw events to the tracker: positions, duplicates, decoding, skips, shards and lag.

The one path every event takes: stream -> pipeline (decode) -> tracker -> sinks.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Final

from exporter.decode import Skip, Update, decode_update
from exporter.logs import RateLimitedWarning
from exporter.metrics import Metrics
from exporter.sse import RawEvent
from exporter.status import StreamStatus
from exporter.tracker import Tracker

__all__ = ["Pipeline", "shard_of"]

log = logging.getLogger(__name__)
# Update ids remembered to tell a replayed update from a server whose positions restarted.
RECENT_IDS: Final = 2048


def shard_of(task_id: str, root_id: str | None, shards: int) -> int:
    """The shard that owns a task: its root task's id, hashed stably, modulo `shards`."""
    return zlib.crc32((root_id or task_id).encode()) % shards


class Pipeline:
    """Applies events in order; the last position it applied is `status.position`."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        metrics: Metrics,
        status: StreamStatus,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.tracker = tracker
        self.metrics = metrics
        self.status = status
        self.shard = shard
        self.recent_ids: dict[str, None] = {}
        self._warn = RateLimitedWarning(log)

    def feed(self, events: Sequence[RawEvent], arrival: float) -> None:
        """Apply the events of one read, which arrived at wall time `arrival`."""
        status = self.status
        apply = self.tracker.apply
        metrics = self.metrics
        recent = self.recent_ids
        last_update: Update | None = None
        for event in events:
            position = self._position(event)
            if position is None:
                continue
            if event.oversized:
                self._skip(Skip(position, "oversized", f"event {event.event!r}"))
                status.position = max(position, status.position or 0)
                continue
            result = decode_update(event.event, event.data, position)
            if isinstance(result, Skip):
                self._skip(result)
                status.position = max(position, status.position or 0)
                continue
            update_id = result.update_id
            if update_id is not None:
                if update_id in recent:
                    self._skip(Skip(position, "duplicate_position", "update seen before"))
                    continue
                recent[update_id] = None
                if len(recent) > RECENT_IDS:
                    del recent[next(iter(recent))]
            if status.position is not None and position < status.position:
                status.position_resets += 1
                self._warn(
                    "position",
                    "stream position went back from %s to %s; treating it as a server reset",
                    status.position,
                    position,
                )
            status.position = position
            if self.shard is not None:
                index, count = self.shard
                if shard_of(result.task_id, result.root_id, count) != index:
                    continue
            apply(result)
            metrics.observe_lag(arrival - result.timestamp)
            last_update = result
        if last_update is not None:
            status.last_update_timestamp = last_update.timestamp
            status.last_update_arrival = arrival

    def _position(self, event: RawEvent) -> int | None:
        """The event's position, or None when it is a duplicate (counted) or has none."""
        text = event.id
        last = self.status.position
        try:
            position = int(text) if text is not None else None
        except ValueError:
            position = None
        if position is None:
            # Without a position it cannot be deduplicated or resumed past; apply it anyway
            # and keep the last known position for resuming.
            return last if last is not None else 0
        if last is None or position > last:
            return position
        if position == last:
            self._skip(Skip(position, "duplicate_position", f"position {position} again"))
            return None
        # Backwards: a replay of updates already seen (their update ids are remembered and
        # skipped after decoding), or a server whose positions restarted (accepted).
        return position

    def _skip(self, skip: Skip) -> None:
        self.metrics.skipped(skip.reason)
        self._warn(
            skip.reason,
            "skipped update at position %s: %s (%s)",
            skip.position,
            skip.reason,
            skip.detail,
        )
