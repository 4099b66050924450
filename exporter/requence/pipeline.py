"""From raw events to the tracker: positions, duplicates, decoding, skips, shards and lag.

The one path every event takes: stream -> pipeline (decode) -> tracker -> sinks.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Final

from exporter.core.logs import RateLimitedWarning
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.core.updates import LAST_TIMESTAMP, MAX_FUTURE_SECONDS, MAX_POSITION, Update
from exporter.metrics.store import Metrics
from exporter.requence.decode import Skip, decode_update
from exporter.requence.sse import RawEvent

__all__ = ["Pipeline", "RecentIds", "parse_position", "shard_of"]

log = logging.getLogger(__name__)
OUT_OF_RANGE: Final = -2  # parse_position: all digits, but beyond MAX_POSITION
# Update ids remembered to tell a replayed update from a server whose positions restarted.
RECENT_IDS: Final = 2048


class RecentIds:
    """The last `size` update ids, to tell a replayed update from one never seen."""

    # A plain ring: remembering costs one store per update; looking up scans the ring, which
    # only happens for the rare update whose position went backwards. `Pipeline.feed` does
    # what `add` does in place, to save a call per update.
    __slots__ = ("_i", "_ring")

    def __init__(self, size: int = RECENT_IDS, ids: Sequence[str] = ()) -> None:
        self._ring: list[str | None] = [None] * size
        self._i = 0
        for update_id in ids[-size:]:
            self.add(update_id)

    def __contains__(self, update_id: object) -> bool:
        return update_id is not None and update_id in self._ring

    def add(self, update_id: str) -> None:
        """Remember one id, forgetting the oldest."""
        i = self._i
        self._ring[i] = update_id
        self._i = (i + 1) % len(self._ring)

    def ids(self) -> list[str]:
        """The remembered ids, oldest first (for the state file)."""
        i = self._i
        return [x for x in self._ring[i:] + self._ring[:i] if x is not None]


def parse_position(event_id: str | None) -> int:
    """A position from an event id: -1 when it is none, OUT_OF_RANGE when it is too large."""
    if event_id is None or not (event_id.isascii() and event_id.isdigit()):
        return -1
    # Leading zeros are allowed, so the digits are counted after them.
    digits = event_id.lstrip("0")
    if len(digits) > 19 or (digits and int(digits) > MAX_POSITION):
        return OUT_OF_RANGE
    return int(event_id)


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
        self.recent_ids = RecentIds()
        self._suspect = 0  # updates left whose ids are checked since the last server reset
        # Positions up to this were counted and scraped before a crash: applied quietly.
        self.quiet_until = -1
        self._warn = RateLimitedWarning(log)

    def feed(self, events: Sequence[RawEvent], arrival: float) -> None:
        """Apply the events of one read, which arrived at wall time `arrival`."""
        # This loop runs once per update: attributes are read into locals before it, the ring
        # of recent ids is written in place (its index stored back after the loop) and the
        # lags are observed together after it. Methods are called on their objects, not
        # through bound methods kept in locals: compiled, those would be generic calls.
        status = self.status
        tracker = self.tracker
        recent = self.recent_ids
        ring = recent._ring
        ring_size = len(ring)
        ring_at = recent._i
        shard = self.shard
        suspect = self._suspect
        quiet = self.quiet_until
        cuts = self.metrics.values_cut
        # Times later than this are from a clock that runs fast, or not times at all.
        not_after = arrival + MAX_FUTURE_SECONDS
        if not_after > LAST_TIMESTAMP:  # noqa: PLR1730 (min() is a call, this a comparison)
            not_after = LAST_TIMESTAMP
        tracker.arrival = arrival
        last = status.position
        floor = last if last is not None else -1  # positions at or below it are unusual
        lags: list[float] = []
        latest: Update | None = None
        try:
            for event in events:
                event_id = event.id
                # Only ASCII digits are a position (int() also takes "+1", "1_0", " 1" and
                # other scripts' digits); up to 18 of them always fit in 63 bits.
                if (
                    event_id is not None
                    and len(event_id) <= 18
                    and event_id.isascii()
                    and event_id.isdigit()
                ):
                    position = int(event_id)  # compiled: a direct str-to-int once it is a str
                else:
                    position = parse_position(event_id)
                    if position == OUT_OF_RANGE:
                        self._skip(
                            Skip(last or 0, "position_out_of_range", f"id {str(event_id)[:40]!r}")
                        )
                        continue
                backwards = False
                if position <= floor or event.oversized:
                    checked = self._unusual(event, position, last)
                    if checked is None:
                        last = status.position  # an oversized event moved it on
                        floor = last if last is not None else -1
                        continue
                    position = checked
                    backwards = last is not None and position < last
                result = decode_update(event.event, event.data, position, not_after, cuts)
                if type(result) is Skip:
                    self._skip(result)
                    last = status.position = max(position, last or 0)
                    floor = last
                    continue
                update: Update = result  # type: ignore[assignment]
                update_id = update.update_id
                if backwards or suspect:
                    # A replay of an update seen before, or new numbering after a server
                    # restart. After a restart, old updates may come again at new positions:
                    # ids are checked until the ring has forgotten everything from before it.
                    if update_id in recent:
                        self._skip(Skip(position, "duplicate_position", "update seen before"))
                        continue
                    if backwards:
                        self._reset(last or 0, position)
                    else:
                        self._suspect -= 1
                    suspect = self._suspect
                    quiet = self.quiet_until
                if update_id is not None:
                    ring[ring_at] = update_id  # `RecentIds.add`, inlined
                    ring_at += 1
                    if ring_at == ring_size:
                        ring_at = 0
                last = floor = status.position = position
                # The last update time describes the stream, which every shard reads whole: a
                # shard whose own tasks are quiet is not stalled.
                latest = update
                if (
                    shard is not None
                    and shard_of(update.task_id, update.root_id, shard[1]) != shard[0]
                ):
                    continue
                if position <= quiet:
                    tracker.apply_quietly(update)
                    continue
                tracker.apply(update)
                lags.append(arrival - update.timestamp)
        finally:
            recent._i = ring_at
            self.metrics.observe_lags(lags)
        if latest is not None:
            status.last_update_timestamp = latest.timestamp
            status.last_update_arrival = arrival

    def _unusual(self, event: RawEvent, position: int, last: int | None) -> int | None:
        """The slow path: no position, oversized, duplicate or backwards. None means skip."""
        if position < 0:
            # Without a position it cannot be deduplicated; apply it, keeping the last position.
            position = last if last is not None else 0
            if not event.oversized:
                return position
        if event.oversized:
            self._skip(Skip(position, "oversized", f"event {event.event!r}"))
            self.status.position = max(position, last or 0)
            return None
        if position == last:
            self._skip(Skip(position, "duplicate_position", f"position {position} again"))
            return None
        # Backwards: a replay of updates already seen (their update ids are remembered and
        # skipped after decoding), or a server whose positions restarted (accepted).
        return position

    def _reset(self, last: int, position: int) -> None:
        self.status.position_resets += 1
        self.quiet_until = -1  # new numbering: the old positions mean nothing now
        self._suspect = RECENT_IDS
        self._warn(
            "position",
            "stream position went back from %s to %s; treating it as a server reset",
            last,
            position,
        )

    def _skip(self, skip: Skip) -> None:
        self.metrics.skipped(skip.reason)
        self._warn(
            skip.reason,
            "skipped update at position %s: %s (%s)",
            skip.position,
            skip.reason,
            skip.detail,
        )
