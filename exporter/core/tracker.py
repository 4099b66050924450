"""Task and node state: the only place that remembers tasks between updates.

The tracker turns updates into observations for its observers (the sinks): every update as it
is applied, each node attempt as it finishes, each task as it finishes or is evicted. It does no
I/O and takes time from the updates' server timestamps, so it is tested with plain values.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Final

from exporter.core.tasks import (
    FailureHook,
    FinishedTask,
    NodeAttempt,
    Observer,
    TaskRow,
    TaskState,
    TrackerStats,
    progress,
    task_record,
)
from exporter.core.updates import (
    MAX_ATTEMPTS_PER_TASK,
    MAX_NODES_PER_TASK,
    NODE_DEFER,
    NODE_END,
    NODE_ERROR,
    NODE_START,
    NODE_UPDATE,
    TASK_ABORTED,
    TASK_END,
    TASK_ERROR,
    TASK_START,
    Node,
    Update,
)

__all__ = ["Tracker"]

_TASK_OUTCOME: Final = {TASK_END: "ended", TASK_ERROR: "errored", TASK_ABORTED: "aborted"}
_NODE_OUTCOME: Final = {NODE_END: "ended", NODE_ERROR: "errored", NODE_DEFER: "deferred"}
# Finished task ids remembered so that a late update (a nodeEnd after its taskEnd) is counted
# but does not open a task that would never finish.
RECENTLY_FINISHED: Final = 4096
SNAPSHOT_VERSION: Final = 1


class Tracker:
    """Applies updates in position order and reports what they mean to its observers."""

    def __init__(
        self,
        *,
        observers: Sequence[Observer] = (),
        failures: FailureHook | None = None,
        max_tasks: int = 100_000,
        task_ttl: float = 86_400.0,
        keep_attempts: bool = True,
        sweep_interval: float = 60.0,
    ) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self._observers = tuple(observers)
        # Called for failures only: an observer is called for every update, which cost the
        # recent-failures view three calls per update for the few that are failures.
        self._failures = failures
        self.max_tasks = max_tasks
        self.task_ttl = task_ttl
        # Finished attempts are only needed to build spans; without traces they are not kept.
        self.keep_attempts = keep_attempts
        self._sweep_interval = sweep_interval
        self._next_sweep = float("-inf")
        # Ordered least recently updated first: eviction and expiry take from the front. An
        # OrderedDict, not a dict: a dict that is popped from the front and appended to at the
        # back leaves deleted slots at its front that every `next(iter())` scans again, which
        # made each eviction at the cap cost tens of microseconds.
        self._tasks: OrderedDict[str, TaskState] = OrderedDict()
        # An OrderedDict for the same reason: the oldest id is dropped as each task finishes.
        self._finished_ids: OrderedDict[str, None] = OrderedDict()
        self.stats = TrackerStats()
        self.latest_timestamp = 0.0
        # The wall time the updates being applied arrived (set by the pipeline for each read):
        # the TTL sweep runs at server time but never ahead of it, so no update from a clock
        # that runs fast can expire the tasks in flight or postpone the sweep.
        self.arrival = float("inf")
        # A snapshot is copied a slice at a time between reads (see `begin_snapshot`): a task
        # about to change is copied first, into `_saving`, if this generation has not yet.
        self._generation = 0
        self._saving: dict[str, TaskRow] | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def tasks(self) -> Iterable[TaskState]:
        """The tasks in flight, least recently updated first."""
        return self._tasks.values()

    def add_observer(self, observer: Observer) -> None:
        """Register one more sink."""
        self._observers = (*self._observers, observer)

    # -- applying updates ----------------------------------------------------------------

    def apply(self, update: Update) -> None:
        """Take in one valid update."""
        # This runs once per update: the common case (a node update of a task in flight) reads
        # each attribute once and skips the work that only a new or finishing task needs.
        ts = update.timestamp
        if ts > self.latest_timestamp:  # noqa: PLR1730 (max() is a call, this a comparison)
            self.latest_timestamp = ts
        task_id = update.task_id
        tasks = self._tasks
        task = tasks.get(task_id)
        kind = update.type
        if task is None:
            if task_id in self._finished_ids:
                self._straggler(update)
                return
            task = self._open_task(update)  # takes its name, root and time from the update
            tasks[task_id] = task
        else:
            if task.saved != self._generation:
                self._copy_before_change(task)
            tasks.move_to_end(task_id)  # most recently updated at the back
            if kind == TASK_START and task.incomplete and not task.finished and not task.open:
                # The start arrived after an update of the same task; nothing was timed yet.
                task.start = ts
                task.incomplete = False
            if not task.name and update.name:
                task.name = update.name
            if update.root_id and not task.root_id:
                task.root_id = update.root_id
            task.last_seen = ts

        node = update.node
        if node is None and kind in _TASK_OUTCOME:
            self._end_task(update, task)
        else:
            attempt: NodeAttempt | None = None
            if node is not None:
                if kind == NODE_START:
                    attempt = self._start_attempt(task, node, ts)
                elif kind != NODE_UPDATE:
                    outcome = _NODE_OUTCOME[kind]
                    attempt = self._close_attempt(task, node.id, ts, outcome, update.message)
            for observer in self._observers:
                observer.on_update(update, task)
                if attempt is not None:
                    observer.on_node_attempt(task, attempt)
            if kind == NODE_ERROR and self._failures is not None:
                self._failures.on_node_error(update, task, attempt)
        if ts >= self._next_sweep:
            now = ts if ts <= self.arrival else self.arrival
            self._next_sweep = now + self._sweep_interval
            self.expire(now)

    def apply_quietly(self, update: Update) -> None:
        """Take in an update that was counted before a crash: state changes, observers hear
        nothing (see `exporter.core.scrapemark`)."""
        observers, failures = self._observers, self._failures
        self._observers, self._failures = (), None
        try:
            self.apply(update)
        finally:
            self._observers, self._failures = observers, failures

    def _end_task(self, update: Update, task: TaskState) -> None:
        """A terminal update: close the task and what it interrupted, and report it all."""
        task_id = update.task_id
        outcome = _TASK_OUTCOME[update.type]
        finished, interrupted = self._finish(task, update.timestamp, outcome, update.message)
        del self._tasks[task_id]
        observers = self._observers
        for observer in observers:
            observer.on_update(update, task)
        self._remember_finished(task_id)
        for observer in observers:
            for closed in interrupted:
                observer.on_node_attempt(task, closed)
            observer.on_task_finished(finished)
        if outcome != "ended" and self._failures is not None:
            self._failures.on_task_failed(finished)

    def _straggler(self, update: Update) -> None:
        # A late update of a task that already finished (a nodeEnd after its taskEnd): it is
        # counted, but opens no task that would never finish.
        task = TaskState(update.task_id, update.name, update.root_id, update.timestamp, True)
        for observer in self._observers:
            observer.on_update(update, task)
        if update.type == NODE_ERROR and self._failures is not None:
            self._failures.on_node_error(update, task, None)

    def _open_task(self, update: Update) -> TaskState:
        incomplete = update.type != TASK_START
        task = TaskState(update.task_id, update.name, update.root_id, update.timestamp, incomplete)
        task.saved = self._generation  # not part of a snapshot begun before it
        if incomplete:
            self.stats.incomplete += 1
        if len(self._tasks) >= self.max_tasks:
            self._evict(next(iter(self._tasks)))
        return task

    def _start_attempt(self, task: TaskState, node: Node, ts: float) -> NodeAttempt | None:
        node_id = node.id
        opened = task.open
        closed = None
        if node_id in opened:
            # A second start without an end: the first attempt was cut short by the second.
            closed = self._close_attempt(task, node_id, ts, "interrupted", None)
        attempts = task.attempts
        number = attempts.get(node_id, 0) + 1
        if number == 1 and len(attempts) >= MAX_NODES_PER_TASK:
            # One task's state stays bounded: this node is counted but not timed.
            self.stats.nodes_dropped += 1
            return closed
        attempts[node_id] = number
        opened[node_id] = (node, number, ts)
        return closed

    def _close_attempt(
        self, task: TaskState, node_id: str, ts: float, outcome: str, message: str | None
    ) -> NodeAttempt | None:
        opened = task.open.pop(node_id, None)
        if opened is None:
            return None  # its start was not seen (or it already closed): counted, not timed
        node, number, start = opened
        if ts < start:
            self.stats.clamped += 1
            ts = start
        attempt = NodeAttempt(node, number, start, ts, outcome, message)
        if self.keep_attempts:
            if len(task.finished) < MAX_ATTEMPTS_PER_TASK:
                task.finished = (*task.finished, attempt)  # at most 512: bounded copying
            else:
                self.stats.attempts_dropped += 1  # timed, but its span is not kept
        return attempt

    def _finish(
        self, task: TaskState, ts: float, outcome: str, message: str | None
    ) -> tuple[FinishedTask, tuple[NodeAttempt, ...]]:
        """The finished task, and the attempts its end interrupted."""
        if ts < task.start:
            self.stats.clamped += 1
            ts = task.start
        closed = [
            self._close_attempt(task, node_id, ts, "interrupted", None)
            for node_id in list(task.open)
        ]
        interrupted = tuple(a for a in closed if a is not None)
        attempts = task.finished if self.keep_attempts else interrupted
        finished = FinishedTask(
            task.task_id,
            task.name,
            task.root_id,
            task.start,
            ts,
            outcome,
            message,
            task.incomplete,
            attempts,
        )
        return finished, interrupted

    def _remember_finished(self, task_id: str) -> None:
        ids = self._finished_ids
        ids[task_id] = None
        if len(ids) > RECENTLY_FINISHED:
            ids.popitem(last=False)

    # -- eviction ------------------------------------------------------------------------

    def expire(self, now: float) -> int:
        """Evict tasks not updated within the TTL before `now` (server time); return how many."""
        cutoff = now - self.task_ttl
        expired = []
        for task in self._tasks.values():
            if task.last_seen >= cutoff:
                break
            expired.append(task.task_id)
        for task_id in expired:
            self._evict(task_id)
        return len(expired)

    def _evict(self, task_id: str) -> None:
        task = self._tasks.pop(task_id)
        if task.saved != self._generation:
            self._copy_before_change(task)
        self.stats.evicted += 1
        end = task.last_seen
        cut = tuple(
            NodeAttempt(node, number, start, max(start, end), "interrupted", None)
            for node, number, start in task.open.values()
        )
        task.open.clear()
        finished = FinishedTask(
            task.task_id,
            task.name,
            task.root_id,
            task.start,
            end,
            "evicted",
            None,
            task.incomplete,
            (*task.finished, *cut),
        )
        for observer in self._observers:
            observer.on_task_finished(finished)

    # -- views for scrapes ---------------------------------------------------------------

    def progress(
        self,
    ) -> tuple[Counter[str], Counter[tuple[str, str, str]], dict[str, float]]:
        """Tasks in flight by task name, open node attempts by (task name, node, node type), and
        the start of the oldest task in flight per task name (`exporter.core.tasks.progress`)."""
        return progress(self._tasks.values())

    # -- saving and restoring ------------------------------------------------------------

    def begin_snapshot(self) -> list[TaskState]:
        """Begin a snapshot of the tracker as it is now; return its tasks, least recently
        updated first, to copy with `snapshot_rows` a slice at a time, between updates. A task
        that changes before its slice is copied is copied just before the change, so the rows
        are all of this moment. End it with `end_snapshot`."""
        self._generation += 1
        self._saving = {}
        return list(self._tasks.values())

    def snapshot_rows(self, tasks: list[TaskState], start: int, stop: int) -> list[TaskRow]:
        """The rows of `tasks[start:stop]` as they were when the snapshot began."""
        generation = self._generation
        saving = self._saving
        rows: list[TaskRow] = []
        for task in tasks[start:stop]:
            if task.saved != generation:
                task.saved = generation
                rows.append(task.row())
            elif saving is not None:
                rows.append(saving[task.task_id])
        return rows

    def end_snapshot(self) -> None:
        """Stop copying tasks before they change."""
        self._saving = None

    def _copy_before_change(self, task: TaskState) -> None:
        task.saved = self._generation
        if self._saving is not None:
            self._saving[task.task_id] = task.row()

    def snapshot_head(self) -> dict[str, Any]:
        """The tracker's part of the state file besides its tasks, as JSON-ready data."""
        return {
            "version": SNAPSHOT_VERSION,
            "latest_timestamp": self.latest_timestamp,
            "finished_ids": list(self._finished_ids),
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue after a restart, at once, as JSON-ready data."""
        tasks = self.begin_snapshot()
        try:
            rows = self.snapshot_rows(tasks, 0, len(tasks))
        finally:
            self.end_snapshot()
        return {**self.snapshot_head(), "tasks": [task_record(row) for row in rows]}

    def restore(self, data: dict[str, Any]) -> int:
        """Load a `snapshot()`, checking every field (`exporter.core.snapshot`); return how many
        tasks beyond `max_tasks` were left out (counted as evicted). Raise ValueError when it
        is not a snapshot."""
        from exporter.core.snapshot import parse_snapshot  # here: it imports this module

        tasks, finished_ids, latest, dropped, trims = parse_snapshot(data, self.max_tasks)
        self.load(tasks, finished_ids, latest, dropped)
        self.stats.nodes_dropped += trims.nodes_dropped
        self.stats.attempts_dropped += trims.attempts_dropped
        return dropped

    def load(
        self,
        tasks: OrderedDict[str, TaskState],
        finished_ids: OrderedDict[str, None],
        latest_timestamp: float,
        dropped: int,
    ) -> None:
        """Take over tasks read by `exporter.core.snapshot.parse_snapshot`; `dropped` were
        evicted."""
        self._tasks = tasks
        self._finished_ids = finished_ids
        self.latest_timestamp = latest_timestamp
        self.stats.evicted += dropped
