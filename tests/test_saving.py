"""Checkpoints leave the event loop free (slices with yields, the write in a thread) and save
one moment; the loop's lateness is measured."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import orjson

from exporter.core.checkpoint import SavedState, StateFile
from exporter.core.saving import SNAPSHOT_SLICE, Checkpointer, watch_loop_lag
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.core.updates import Node, Update
from exporter.metrics.store import Metrics

NODE = Node("n-fetch", "service", "fetch")
TASKS = 3 * SNAPSHOT_SLICE + 7


class WhereSaved(StateFile):
    """The real state file, noting which thread each save ran in."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: list[threading.Thread] = []

    def save(self, state: SavedState, seq: int | None = None) -> None:
        self.threads.append(threading.current_thread())
        super().save(state, seq)


def _tracker() -> Tracker:
    tracker = Tracker(max_tasks=TASKS + 10)
    for i in range(TASKS):
        start = 100.0 + i
        tracker.apply(Update(2 * i, "taskStart", f"t{i}", start, "x", None, None, None, None))
        tracker.apply(Update(2 * i + 1, "nodeStart", f"t{i}", start, None, None, NODE, None, None))
    return tracker


async def test_a_checkpoint_yields_between_slices_and_writes_from_a_thread(
    tmp_path: Path,
) -> None:
    tracker = _tracker()
    status = StreamStatus(position=2 * TASKS - 1, since="2026-11-22T09:00:00.000Z")
    state = WhereSaved(tmp_path / "state.json")
    checkpointer = Checkpointer(
        state_file=state,
        tracker=tracker,
        status=status,
        recent_ids=list,
        scrape_mark=None,
        on_failure=lambda: None,
    )
    expected = tracker.snapshot()
    applied = 0

    async def stream_goes_on() -> None:
        # Updates arrive while the checkpoint runs: they change, end and add tasks.
        nonlocal applied
        position = 2 * TASKS
        for i in range(TASKS):
            await asyncio.sleep(0)
            kind = "taskEnd" if i % 2 else "nodeEnd"
            node = None if i % 2 else NODE
            tracker.apply(Update(position, kind, f"t{i}", 9e3, None, None, node, None, None))
            tracker.apply(
                Update(position + 1, "taskStart", f"n{i}", 9e3, "x", None, None, None, None)
            )
            position += 2
            applied += 1

    other = asyncio.create_task(stream_goes_on())
    assert await checkpointer.save()
    other.cancel()
    assert applied >= TASKS // SNAPSHOT_SLICE  # the loop ran between slices
    assert state.threads
    assert threading.main_thread() not in state.threads
    saved = orjson.loads((tmp_path / "state.json").read_bytes())
    assert saved["position"] == 2 * TASKS - 1
    assert saved["tracker"]["tasks"] == expected["tasks"]  # of the moment the save began


async def test_nothing_changed_means_nothing_written_and_an_older_save_never_wins(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    state = StateFile(path)
    state.save(SavedState("2026-11-22T09:00:00.000Z", 9, [], Tracker().snapshot()), seq=2)
    state.save(SavedState("2026-11-22T09:00:00.000Z", 5, [], Tracker().snapshot()), seq=1)
    assert orjson.loads(path.read_bytes())["position"] == 9


async def test_the_loop_lag_is_measured_and_shown_by_status() -> None:
    metrics = Metrics()
    watcher = asyncio.create_task(watch_loop_lag(metrics.observe_loop_lag, interval=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # noqa: ASYNC251 (holds the loop on purpose, as a blocking call would)
    await asyncio.sleep(0.05)
    watcher.cancel()
    lag = metrics.loop_lag_quantile(1.0)
    assert lag is not None
    assert lag >= 0.5  # the 0.25-0.5 s bucket at least: the loop was held 0.3 s
    text = metrics.render()
    assert 'requence_exporter_event_loop_lag_seconds_bucket{le="0.5"}' in text
