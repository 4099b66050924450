"""The pipeline: positions, duplicates, server resets and shards, fed plain raw events."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.metrics.store import Metrics
from exporter.requence.pipeline import Pipeline, RecentIds, shard_of
from exporter.requence.sse import RawEvent


def build(shard: tuple[int, int] | None = None) -> tuple[Pipeline, Metrics, Tracker]:
    status = StreamStatus()
    metrics = Metrics(status=status)
    tracker = Tracker(observers=[metrics])
    metrics.tracker = tracker
    return Pipeline(tracker=tracker, metrics=metrics, status=status, shard=shard), metrics, tracker


def raw(
    position: int | None, kind: str, task: str, *, uid: str | None = None, root: str | None = None
) -> RawEvent:
    data = {
        "task_id": task,
        "timestamp": 1000 + (position or 0),
        "name": "n",
        "rootTaskId": root,
        "updateId": uid or f"u{position}",
    }
    return RawEvent(kind, None if position is None else str(position), orjson.dumps(data))


def test_duplicates_at_or_below_the_position_are_skipped_and_counted() -> None:
    pipeline, metrics, _ = build()
    pipeline.feed([raw(1, "taskStart", "a"), raw(2, "taskStart", "b")], 0.0)
    pipeline.feed([raw(2, "taskStart", "b"), raw(1, "taskStart", "a"), raw(3, "taskEnd", "a")], 0.0)
    assert metrics.updates_by_type()["taskStart"] == 2
    assert metrics.updates_by_type()["taskEnd"] == 1
    assert metrics._skipped["duplicate_position"] == 2
    assert pipeline.status.position == 3
    assert pipeline.status.position_resets == 0


def test_positions_going_back_with_new_updates_are_a_server_reset() -> None:
    pipeline, metrics, _ = build()
    pipeline.feed([raw(100, "taskStart", "a"), raw(101, "taskStart", "b")], 0.0)
    pipeline.feed([raw(1, "taskEnd", "a", uid="new-1"), raw(2, "taskEnd", "b", uid="new-2")], 0.0)
    assert metrics.updates_by_type()["taskEnd"] == 2
    assert pipeline.status.position == 2
    assert pipeline.status.position_resets == 1


def test_skipped_events_still_advance_the_position() -> None:
    pipeline, metrics, _ = build()
    pipeline.feed(
        [
            raw(1, "taskStart", "a"),
            RawEvent("taskEnd", "2", b"{broken"),
            RawEvent("nodeEnd", "3", b"", oversized=True),
        ],
        0.0,
    )
    assert pipeline.status.position == 3
    assert metrics._skipped["malformed_json"] == 1
    assert metrics._skipped["oversized"] == 1


def test_recent_ids_forget_the_oldest_and_survive_a_round_trip() -> None:
    recent = RecentIds(size=3)
    for uid in "abcd":
        recent.add(uid)
    assert "a" not in recent
    assert recent.ids() == ["b", "c", "d"]
    assert RecentIds(size=3, ids=recent.ids()).ids() == ["b", "c", "d"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=40),
    st.integers(2, 4),
)
def test_shards_split_root_tasks_disjointly_and_keep_sub_tasks_with_their_root(
    tasks: list[tuple[int, bool]], shards: int
) -> None:
    events = []
    for i, (root, is_sub) in enumerate(tasks, start=1):
        task = f"sub-{i}" if is_sub else f"root-{root}"
        events.append(raw(i, "taskStart", task, root=f"root-{root}" if is_sub else None))
    whole, whole_metrics, _ = build()
    whole.feed(events, 0.0)
    parts = [build((i, shards)) for i in range(shards)]
    owners: dict[str, int] = {}
    for index, (pipeline, _metrics, tracker) in enumerate(parts):
        pipeline.feed(events, 0.0)
        assert pipeline.status.position == len(events)  # every shard reads the whole stream
        for task in tracker.tasks():
            owners[task.root_id or task.task_id] = owners.get(task.root_id or task.task_id, index)
            assert owners[task.root_id or task.task_id] == index
    total = sum(m.updates_by_type()["taskStart"] for _p, m, _t in parts)
    assert total == whole_metrics.updates_by_type()["taskStart"]


def test_the_last_update_time_is_absent_until_known_and_describes_the_whole_stream() -> None:
    """A shard owning none of the tasks still sees the stream move (it reads all of it)."""
    events = [raw(i, "taskStart", f"root-{i}") for i in range(1, 9)]
    owners = dict.fromkeys(range(2), 0)
    for event in events:
        owners[shard_of(orjson.loads(event.data)["task_id"], None, 2)] += 1
    idle = next(i for i, n in owners.items() if n < len(events))  # a shard missing some tasks
    pipeline, metrics, tracker = build((idle, 2))
    assert "requence_exporter_last_update_timestamp_seconds" not in {
        s.name for f in parse_text(metrics.render()) for s in f.samples
    }
    # Only the updates this shard does not own: its tracker takes none of them.
    foreign = [e for e in events if shard_of(orjson.loads(e.data)["task_id"], None, 2) != idle]
    pipeline.feed(foreign, 5000.0)
    assert len(tracker) == 0
    last = orjson.loads(foreign[-1].data)["timestamp"] / 1000  # milliseconds on the wire
    assert pipeline.status.last_update_timestamp == last
    samples = {s.name: s.value for f in parse_text(metrics.render()) for s in f.samples}
    assert samples["requence_exporter_last_update_timestamp_seconds"] == last
