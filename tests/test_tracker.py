"""The tracker: observations from updates, eviction, snapshots; properties over interleavings."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.core.tasks import FinishedTask, NodeAttempt, TaskState, task_record
from exporter.core.tracker import Tracker
from exporter.core.updates import MAX_ATTEMPTS_PER_TASK, MAX_NODES_PER_TASK, Node, Update
from tests.factories import LOGIC, SERVICE, Script


class Recorder:
    """An observer that keeps what it is told."""

    def __init__(self) -> None:
        self.updates: list[Update] = []
        self.attempts: list[tuple[str, NodeAttempt]] = []
        self.finished: list[FinishedTask] = []

    def on_update(self, update: Update, task: TaskState) -> None:
        self.updates.append(update)

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        self.attempts.append((task.task_id, attempt))

    def on_task_finished(self, task: FinishedTask) -> None:
        self.finished.append(task)


def run(updates: list[Update], **kwargs: Any) -> tuple[Tracker, Recorder]:
    rec = Recorder()
    tracker = Tracker(observers=[rec], **kwargs)
    for u in updates:
        tracker.apply(u)
    return tracker, rec


def test_task_with_defer_retry_and_error_gives_one_attempt_each() -> None:
    s = Script()
    s.add("taskStart", "t1", 10.0)
    s.add("nodeStart", "t1", 11.0, node=SERVICE)
    s.add("nodeDefer", "t1", 12.5, node=SERVICE, message="rate limited")
    s.add("nodeStart", "t1", 20.0, node=SERVICE)
    s.add("nodeError", "t1", 21.0, node=SERVICE, message="boom")
    s.add("nodeEnd", "t1", 21.5, node=SERVICE)  # after its error: counted, not timed again
    s.add("taskError", "t1", 22.0, message="node failed")
    tracker, rec = run(s.updates)
    assert len(tracker) == 0
    outcomes = [(a.attempt, a.outcome, a.end - a.start, a.message) for _, a in rec.attempts]
    assert outcomes == [(1, "deferred", 1.5, "rate limited"), (2, "errored", 1.0, "boom")]
    [task] = rec.finished
    assert (task.outcome, task.end - task.start, task.message) == ("errored", 12.0, "node failed")
    assert not task.incomplete
    assert [a.outcome for a in task.attempts] == ["deferred", "errored"]


def test_terminal_update_interrupts_open_nodes_at_its_timestamp() -> None:
    s = Script()
    s.add("taskStart", "t1", 0.0)
    s.add("nodeStart", "t1", 1.0, node=SERVICE)
    s.add("nodeStart", "t1", 2.0, node=LOGIC)
    s.add("taskAborted", "t1", 5.0, message="cancelled by user")
    _, rec = run(s.updates)
    interrupted = sorted((a.node.id, a.start, a.end, a.outcome) for _, a in rec.attempts)
    assert interrupted == [
        ("n-check", 2.0, 5.0, "interrupted"),
        ("n-fetch", 1.0, 5.0, "interrupted"),
    ]
    assert rec.finished[0].outcome == "aborted"


def test_incomplete_task_is_counted_and_never_timed_from_an_invented_start() -> None:
    s = Script()
    s.add("nodeEnd", "t9", 100.0, node=SERVICE)
    s.add("nodeStart", "t9", 101.0, node=LOGIC)
    s.add("nodeEnd", "t9", 103.0, node=LOGIC)
    s.add("taskEnd", "t9", 104.0)
    tracker, rec = run(s.updates)
    assert tracker.stats.incomplete == 1
    [task] = rec.finished
    assert task.incomplete
    assert task.start == 100.0  # first update seen, for the span only
    assert [(a.node.id, a.end - a.start) for _, a in rec.attempts] == [("n-check", 2.0)]


def test_late_update_after_terminal_is_counted_but_opens_no_task() -> None:
    s = Script()
    s.add("taskStart", "t1", 0.0)
    s.add("taskEnd", "t1", 1.0)
    s.add("nodeEnd", "t1", 1.5, node=SERVICE)
    tracker, rec = run(s.updates)
    assert len(tracker) == 0
    assert len(rec.updates) == 3
    assert tracker.stats.incomplete == 0


def test_end_before_start_is_clamped_to_zero_and_counted() -> None:
    s = Script()
    s.add("taskStart", "t1", 10.0)
    s.add("nodeStart", "t1", 10.0, node=SERVICE)
    s.add("nodeEnd", "t1", 9.0, node=SERVICE)
    s.add("taskEnd", "t1", 8.0)
    tracker, rec = run(s.updates)
    assert [a.end - a.start for _, a in rec.attempts] == [0.0]
    assert rec.finished[0].end - rec.finished[0].start == 0.0
    assert tracker.stats.clamped == 2


def test_cap_evicts_least_recently_updated_task_first() -> None:
    s = Script()
    s.add("taskStart", "a", 0.0)
    s.add("taskStart", "b", 1.0)
    s.add("nodeStart", "a", 2.0, node=SERVICE)  # a is now more recent than b
    s.add("taskStart", "c", 3.0)
    tracker, rec = run(s.updates, max_tasks=2)
    assert sorted(t.task_id for t in tracker.tasks()) == ["a", "c"]
    [evicted] = rec.finished
    assert (evicted.task_id, evicted.outcome, evicted.end) == ("b", "evicted", 1.0)
    assert tracker.stats.evicted == 1


def test_ttl_expires_silent_tasks_and_cuts_their_open_attempts() -> None:
    s = Script()
    s.add("taskStart", "old", 0.0)
    s.add("nodeStart", "old", 5.0, node=SERVICE)
    s.add("taskStart", "new", 50.0)
    s.add("taskStart", "newer", 200.0)
    tracker, rec = run(s.updates, task_ttl=160.0, sweep_interval=10.0)
    assert "old" not in tracker
    assert "new" in tracker
    [evicted] = rec.finished
    assert [(a.outcome, a.start, a.end) for a in evicted.attempts] == [("interrupted", 5.0, 5.0)]
    assert rec.attempts == []  # cut attempts are not timed in metrics


def test_snapshot_round_trip_continues_a_task_across_a_restart() -> None:
    s = Script()
    s.add("taskStart", "t1", 0.0, root="r1")
    s.add("nodeStart", "t1", 1.0, node=SERVICE)
    s.add("nodeDefer", "t1", 2.0, node=SERVICE, message="wait")
    s.add("nodeStart", "t1", 3.0, node=SERVICE)
    first, _ = run(s.updates)
    second = Tracker(observers=[rec := Recorder()])
    second.restore(first.snapshot())
    second.apply(Update(99, "nodeEnd", "t1", 4.0, None, None, SERVICE, None, None))
    second.apply(Update(100, "taskEnd", "t1", 6.0, None, None, None, None, None))
    [task] = rec.finished
    assert (task.start, task.end, task.incomplete, task.root_id) == (0.0, 6.0, False, "r1")
    assert [(a.attempt, a.outcome) for a in task.attempts] == [(1, "deferred"), (2, "ended")]


def test_one_task_holds_at_most_its_bound_of_nodes_and_attempts_and_counts_the_rest() -> None:
    s = Script()
    s.add("taskStart", "endless", 0.0)
    for i in range(MAX_NODES_PER_TASK + 40):
        node = Node(f"node-{i}", "service", None)
        s.add("nodeStart", "endless", 1.0 + i, node=node)
        s.add("nodeEnd", "endless", 1.5 + i, node=node)
    first = Node("node-0", "service", None)
    for i in range(MAX_ATTEMPTS_PER_TASK):  # retries of a node within the bound: attempts
        s.add("nodeStart", "endless", 1000.0 + i, node=first)
        s.add("nodeDefer", "endless", 1000.5 + i, node=first)
    tracker, rec = run(s.updates)
    [task] = tracker.tasks()
    assert len(task.attempts) == MAX_NODES_PER_TASK
    assert task.attempts["node-0"] == 1 + MAX_ATTEMPTS_PER_TASK
    assert len(task.finished) == MAX_ATTEMPTS_PER_TASK
    assert tracker.stats.nodes_dropped == 40  # started, counted, never timed
    timed = MAX_NODES_PER_TASK + MAX_ATTEMPTS_PER_TASK
    assert len(rec.attempts) == timed
    assert tracker.stats.attempts_dropped == timed - MAX_ATTEMPTS_PER_TASK  # timed, no span
    assert len(rec.updates) == len(s.updates)  # every update still counted


def test_an_update_from_a_fast_clock_neither_expires_tasks_nor_postpones_the_sweep() -> None:
    arrival = 1000.0
    tracker, rec = run([], task_ttl=600.0, sweep_interval=60.0)
    tracker.arrival = arrival
    s = Script()
    s.add("taskStart", "a", 900.0)
    s.add("taskStart", "b", 950.0)
    s.add("taskStart", "fast", arrival + 3000.0)  # within no TTL of the tasks in flight
    for update in s.updates:
        tracker.apply(update)
    assert {t.task_id for t in tracker.tasks()} == {"a", "b", "fast"}
    assert rec.finished == []
    # The sweep still runs on the stream's own time: a task silent past the TTL leaves.
    tracker.arrival = arrival + 700.0
    tracker.apply(Update(9, "nodeStart", "b", 1600.0, None, None, SERVICE, None, None))
    assert [t.task_id for t in rec.finished] == ["a"]


def test_a_snapshot_copied_in_slices_is_of_the_moment_it_began() -> None:
    s = Script()
    for i in range(6):
        s.add("taskStart", f"t{i}", float(i))
        s.add("nodeStart", f"t{i}", float(i), node=SERVICE)
    tracker, _ = run(s.updates, max_tasks=6)
    expected = tracker.snapshot()
    tasks = tracker.begin_snapshot()
    rows = tracker.snapshot_rows(tasks, 0, 2)
    # Between slices the stream goes on: tasks change, finish, are evicted and arrive.
    later = Script()
    later.position = 100
    later.add("nodeEnd", "t3", 10.0, node=SERVICE)
    later.add("nodeStart", "t4", 11.0, node=LOGIC)
    later.add("taskEnd", "t5", 12.0)
    later.add("taskStart", "new-1", 13.0)
    later.add("taskStart", "new-2", 14.0)  # the cap evicts t0, copied already
    later.add("taskStart", "new-3", 15.0)  # and t1
    for update in later.updates:
        tracker.apply(update)
    rows += tracker.snapshot_rows(tasks, 2, 6)
    tracker.end_snapshot()
    assert [task_record(r) for r in rows] == expected["tasks"]
    # After it, changes are made without copies.
    tracker.apply(Update(200, "nodeEnd", "t4", 16.0, None, None, LOGIC, None, None))
    assert tracker._saving is None


# -- properties --------------------------------------------------------------------------

NODES = [
    Node(f"n{i}", t, f"alias{i}" if i % 2 else None)
    for i, t in enumerate(["service", "logic", "or", "reference"])
]


@st.composite
def task_script(draw: st.DrawFn, task_id: str) -> list[tuple[str, float, Node | None]]:
    """One task's updates in order, with non-decreasing timestamps."""
    steps: list[tuple[str, float, Node | None]] = []
    ts = draw(st.floats(0, 1000))

    def tick() -> float:
        nonlocal ts
        ts += draw(st.floats(0, 50))
        return ts

    steps.append(("taskStart", tick(), None))
    for node in draw(st.lists(st.sampled_from(NODES), max_size=4)):
        for _ in range(draw(st.integers(1, 2))):
            steps.append(("nodeStart", tick(), node))
            steps.extend(("nodeUpdate", tick(), node) for _ in range(draw(st.integers(0, 2))))
            end = draw(st.sampled_from(["nodeEnd", "nodeError", "nodeDefer", None]))
            if end:
                steps.append((end, tick(), node))
    steps.append((draw(st.sampled_from(["taskEnd", "taskError", "taskAborted"])), tick(), None))
    return steps


@st.composite
def interleaving(draw: st.DrawFn) -> list[Update]:
    scripts = [draw(task_script(f"task-{i}")) for i in range(draw(st.integers(1, 6)))]
    cursors = [0] * len(scripts)
    updates: list[Update] = []
    while any(c < len(s) for c, s in zip(cursors, scripts, strict=True)):
        live = [i for i, s in enumerate(scripts) if cursors[i] < len(s)]
        i = draw(st.sampled_from(live))
        kind, ts, node = scripts[i][cursors[i]]
        cursors[i] += 1
        updates.append(Update(len(updates) + 1, kind, f"task-{i}", ts, "n", None, node, None, None))
    return updates


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(interleaving())
def test_any_interleaving_counts_literally_times_non_negatively_and_leaves_no_state(
    updates: list[Update],
) -> None:
    tracker, rec = run(updates)
    assert Counter(u.type for u in rec.updates) == Counter(u.type for u in updates)
    assert all(a.end >= a.start for _, a in rec.attempts)
    assert all(t.end >= t.start for t in rec.finished)
    assert len(tracker) == 0
    tasks, nodes, _oldest = tracker.progress()
    assert not tasks
    assert not nodes
    starts = sum(1 for u in updates if u.type == "nodeStart")
    assert len(rec.attempts) == starts  # every attempt closes exactly once
    assert len(rec.finished) == len({u.task_id for u in updates})


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(interleaving(), st.integers(1, 3))
def test_a_cap_never_holds_more_tasks_than_allowed(updates: list[Update], cap: int) -> None:
    rec = Recorder()
    tracker = Tracker(observers=[rec], max_tasks=cap)
    for u in updates:
        tracker.apply(u)
        assert len(tracker) <= cap
    assert all(t.end >= t.start for t in rec.finished)


# What the tracker itself allocates for a task whose start it has seen, without traces: the
# task, its node tables and its place in the table (the id string and the update are the
# stream's). 306 bytes on CPython 3.11 to 3.13; the bound catches a per-task container or a
# few attributes more, which the benchmark's bytes per tracked task (RSS) would show later.
TRACKER_BYTES_PER_TASK = 360


def test_a_tracked_task_costs_the_tracker_at_most_its_budget() -> None:
    count = 20_000
    script = Script()
    starts = [
        script.add("taskStart", f"5f0c1e2a-8b3d-4c6e-9f70-{i:012d}", 1767225600.0 + i, name="x")
        for i in range(count)
    ]
    tracker = Tracker(max_tasks=count)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for update in starts:
            tracker.apply(update)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(tracker) == count
    assert grown / count <= TRACKER_BYTES_PER_TASK
