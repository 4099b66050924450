"""Checkpoints that never hold the event loop, and a watch on how late the loop runs.

A checkpoint of 100,000 tasks took the loop for seconds when it was built and written in one
go. Now the tracker's tasks are copied a slice at a time with a yield between slices (the
tracker copies a task that changes before its slice, so the copy is of one moment: see
`Tracker.begin_snapshot`), and encoding, writing and fsync run in a thread on that copy, which
nothing else touches. The tracker itself is only ever touched from the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from exporter.core.checkpoint import SavedState, StateFile
from exporter.core.logs import RateLimitedWarning
from exporter.core.scrapemark import ScrapeMark
from exporter.core.status import StreamStatus
from exporter.core.tasks import TaskRow
from exporter.core.tracker import Tracker

__all__ = ["SNAPSHOT_SLICE", "Checkpointer", "watch_loop_lag"]

log = logging.getLogger(__name__)
# Tasks copied between two yields: a few milliseconds of work.
SNAPSHOT_SLICE: Final = 2000
LOOP_LAG_INTERVAL: Final = 0.25


class Checkpointer:
    """Writes the state file when anything was processed since the last save."""

    def __init__(
        self,
        *,
        state_file: StateFile,
        tracker: Tracker,
        status: StreamStatus,
        recent_ids: Callable[[], list[str]],
        scrape_mark: ScrapeMark | None,
        on_failure: Callable[[], None],
    ) -> None:
        self.state_file = state_file
        self._tracker = tracker
        self._status = status
        self._recent_ids = recent_ids
        self._scrape_mark = scrape_mark
        self._on_failure = on_failure
        self.saved_position: int | None = None
        self._resets = 0  # position resets the scrape mark has been cleared for
        self._seq = 0
        self._warning = RateLimitedWarning(log)

    async def save(self, *, force: bool = False) -> bool:
        """Save unless nothing changed; return whether the state on disk is now current. A
        failed save is counted (`on_failure`) and logged at most once a minute."""
        status = self._status
        if not force and status.position == self.saved_position:
            return True
        if self._scrape_mark is not None and status.position_resets != self._resets:
            # The mark counts positions in the numbering before the reset: were it kept, a
            # crash before the next scrape would take new updates for counted ones.
            self._scrape_mark.clear()
            self._resets = status.position_resets
        tracker = self._tracker
        # Everything of this moment: the tasks are copied below, as they are now.
        head = tracker.snapshot_head()
        position = status.position
        since, recent, last_update = status.since, self._recent_ids(), status.last_update_timestamp
        tasks = tracker.begin_snapshot()
        rows: list[TaskRow] = []
        try:
            for start in range(0, len(tasks), SNAPSHOT_SLICE):
                if start:
                    await asyncio.sleep(0)  # let the stream and the probes in
                rows += tracker.snapshot_rows(tasks, start, start + SNAPSHOT_SLICE)
        finally:
            tracker.end_snapshot()
        head["tasks"] = rows
        state = SavedState(since, position, recent, head, last_update)
        self._seq += 1
        try:
            await asyncio.to_thread(self.state_file.save, state, self._seq)
        except OSError as exc:
            self._on_failure()
            self._warning(
                "save",
                "cannot write state file %s: %s",
                self.state_file.path,
                exc.strerror or exc,
            )
            return False
        self.saved_position = position
        return True

    async def run(self, interval: float) -> None:
        """Save every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.save()


async def watch_loop_lag(
    observe: Callable[[float], None], interval: float = LOOP_LAG_INTERVAL
) -> None:
    """Observe, until cancelled, how late the loop wakes from a sleep of `interval`: whatever
    held it (a long computation, a blocking call) delayed every timer and request as much."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(interval)
        observe(max(time.monotonic() - start - interval, 0.0))
