"""Arbitrary event-stream bytes, split anywhere, through decoder, pipeline, tracker and metrics.

Valid events (with positions that repeat and go backwards) mixed with garbage must never raise;
every dispatched event is either counted as an update or counted as skipped; the exposition
renders in both formats and parses; the state a checkpoint would save can be written and read
back; and how the bytes were split changes nothing. Hostile modes are mixed in: positions past
64 bits, ids `int()` would take but are no positions, long runs of blank lines (what a
compression bomb inflates to), lines longer than a read, and streams cut into single bytes.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.checkpoint import SavedState, StateFile
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.core.updates import UPDATE_TYPES
from exporter.metrics.store import Metrics
from exporter.requence.pipeline import Pipeline
from exporter.requence.sse import RawEvent, SSEDecoder
from exporter.simulator.protocol import sse_event

ARRIVAL = 1795341700.0
TASKS = ("t-1", "t-2", "t-3", 'quote"and\\slash', "ünïcode\n")
NODES = (
    {"id": "n-1", "type": "service", "alias": "fetch"},
    {"id": "n-2", "type": "logic", "alias": None},
    {"id": "n-3", "type": "weird type", "alias": "a\nb"},
)

timestamps = st.one_of(
    st.floats(1795341600.0, 1795341700.0).map(lambda s: int(s * 1000)),
    st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:00:01.5+02:00", "nope", ""]),
    st.none(),
)


@st.composite
def valid_data(draw: st.DrawFn) -> dict[str, Any]:
    """An update's data object: mostly valid, sometimes with odd values."""
    data: dict[str, Any] = {
        "task_id": draw(st.sampled_from(TASKS)),
        "timestamp": draw(timestamps),
        "updateId": f"u-{draw(st.integers(0, 30))}",
        "name": draw(st.sampled_from([None, "invoice", "ocr", "x" * 300, 'a"b{c}'])),
        "rootTaskId": draw(st.sampled_from([None, "t-1", 5])),
    }
    if draw(st.booleans()):
        data["node"] = draw(st.sampled_from(NODES))
    if draw(st.booleans()):
        data["error"] = draw(st.text(max_size=20))
    return data


positions = st.one_of(st.integers(0, 40), st.sampled_from([2**63 - 1, 2**63, 2**70]))
valid_events = st.builds(
    lambda kind, position, data: sse_event(kind, position, orjson.dumps(data)),
    st.sampled_from([*UPDATE_TYPES, "taskPaused", ""]),
    positions,
    valid_data(),
)
garbage_events = st.builds(
    sse_event,
    st.sampled_from(UPDATE_TYPES),
    st.integers(0, 40),
    st.binary(max_size=40),
)
fragments = st.sampled_from(
    [
        b": keep-alive\n\n",
        b"id: 7\n",
        b"id: -3\n",
        b"id: 99999999999999999999999\n",
        b"id: \x00\n",
        b"id: +3\n",
        b"id: 1_0\n",
        b"id:  7\n",
        "id: \u0663\n".encode(),
        b"id: 1180591620717411303424\n",
        b"id: 000000000000000000000000000012\n",
        b"\n" * 70_000,
        b": " + b"k" * 70_000 + b"\n\n",
        b"data: " + b"d" * 70_000 + b"\n",
        b"event: taskEnd\n",
        b"data: {\n",
        b"data\n",
        b"retry: 10\n",
        b"\r\n",
        b"\n\n",
        b"\r",
        b"\xff\xfe",
    ]
)
pieces = st.lists(
    st.one_of(valid_events, valid_events, garbage_events, fragments, st.binary(max_size=30)),
    max_size=40,
)


def run(
    stream: bytes, cuts: list[int], max_event_bytes: int, state: Path | None = None
) -> tuple[Metrics, list[RawEvent]]:
    """Feed the stream cut at `cuts`; return the metrics and the events dispatched. With
    `state`, save what a checkpoint would and check that it loads back."""
    status = StreamStatus()
    metrics = Metrics(max_label_values=4, status=status)
    tracker = Tracker(observers=[metrics], max_tasks=3, task_ttl=30.0)
    metrics.tracker = tracker
    pipeline = Pipeline(tracker=tracker, metrics=metrics, status=status)
    decoder = SSEDecoder(max_event_bytes)
    dispatched: list[RawEvent] = []
    for start, end in itertools.pairwise([0, *sorted(cuts), len(stream)]):
        events = decoder.feed(stream[start:end])
        dispatched += events
        pipeline.feed(events, ARRIVAL)
    if state is not None:
        saved = SavedState(
            "2026-11-22T09:00:00Z", status.position, pipeline.recent_ids.ids(), tracker.snapshot()
        )
        StateFile(state).save(saved)
        loaded = StateFile(state).load(max_tasks=3)
        assert loaded is not None
        assert (loaded.position, len(loaded.tracker.tasks)) == (status.position, len(tracker))
    return metrics, dispatched


# An oversized event and an event at its position in one read: the second is a duplicate.
@pytest.mark.slow
@example(
    [
        sse_event("taskStart", 0, orjson.dumps({"task_id": "t-1", "timestamp": "x" * 64})),
        sse_event("taskStart", 0, b""),
    ],
    [60],
    48,
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces,
    st.lists(st.integers(0, 4000), max_size=12),
    st.sampled_from([48, 256, 16 * 1024 * 1024]),
)
def test_any_stream_split_anywhere_never_raises_and_still_renders(
    parts: list[bytes], cuts: list[int], max_event_bytes: int
) -> None:
    stream = b"".join(parts)
    cuts = [min(c, len(stream)) for c in cuts]
    with tempfile.TemporaryDirectory() as directory:
        metrics, dispatched = run(stream, cuts, max_event_bytes, Path(directory) / "state.json")

    text = metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    updates = sum(s.value for s in families["requence_exporter_updates"].samples)
    skipped = sum(s.value for s in families["requence_exporter_updates_skipped"].samples)
    # Every event the decoder dispatched was either applied or skipped with a reason.
    assert updates + skipped == len(dispatched)
    assert all(s.value >= 0 for f in families.values() for s in f.samples)
    openmetrics = metrics.render(openmetrics=True)
    assert openmetrics.endswith("# EOF\n")
    assert {f.name for f in openmetrics_families(openmetrics)} >= {
        "requence_exporter_updates",
        "requence_task_duration_seconds",
    }
    # The same events in one read give the same exposition: how reads group events is
    # invisible. (An oversized event's head may be cut differently by different reads; the
    # decoder's own tests cover that, so only identical event sequences are compared.)
    whole, whole_dispatched = run(stream, [], max_event_bytes)
    if whole_dispatched == dispatched:
        assert whole.render() == text


# An event of exactly `max_event_bytes`: a read that ends inside its blank line holds one byte
# more than the event, which must not count.
@example(
    [
        b"data: {\n",
        b"\x00" * 22,
        sse_event(
            "taskPaused",
            0,
            orjson.dumps(
                {"task_id": "t-1", "timestamp": None, "updateId": "u-3", "name": "invoice"}
                | {"rootTaskId": None, "error": "e" * 99}
            ),
        ),
    ],
    256,
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces, st.sampled_from([256, 16 * 1024 * 1024]))
def test_a_stream_dribbled_one_byte_at_a_time_decodes_as_in_one_read(
    parts: list[bytes], max_event_bytes: int
) -> None:
    stream = b"".join(parts)
    dribbled, dribbled_events = run(stream, list(range(1, len(stream))), max_event_bytes)
    whole, whole_events = run(stream, [], max_event_bytes)
    # An oversized event's head may be cut at another byte; everything else is the same.
    if all(not e.oversized for e in whole_events):
        assert dribbled_events == whole_events
        assert dribbled.render() == whole.render()
