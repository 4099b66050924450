"""One validation boundary: hostile values through decode, tracker and every sink, and into the
state file and back.

Whatever the stream's fields hold (any text, of any length, with controls and bidi overrides;
times that parse but cannot be rendered, or from a clock far ahead; values of the wrong type),
nothing downstream raises: metrics, failures (ring, page, /failures, log lines), spans (compact
and OTLP-encoded), the state file written and read back. Every event is counted as an update or
as a skip, no task grows past the state its bounds allow, and what the writer writes the reader
takes back unchanged. A state file mutated with the same values loads or is set aside, never
raises, and never holds a task past those bounds either.
"""

from __future__ import annotations

import io
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.checkpoint import SavedState, StateFile
from exporter.core.logs import TextFormatter
from exporter.core.status import StreamStatus
from exporter.core.tasks import FinishedTask, NodeAttempt, TaskState
from exporter.core.tracker import Tracker
from exporter.core.updates import (
    MAX_ATTEMPTS_PER_TASK,
    MAX_FUTURE_SECONDS,
    MAX_MESSAGE_BYTES,
    MAX_NODES_PER_TASK,
    MAX_TEXT_BYTES,
    UPDATE_TYPES,
    Node,
    Update,
)
from exporter.metrics.store import Metrics
from exporter.requence.pipeline import Pipeline
from exporter.requence.sse import RawEvent
from exporter.serving.failure_log import FailureLog
from exporter.serving.failures import FailureRecorder, FailureRing, failures_response
from exporter.serving.status_page import StatusView, render_status_page
from exporter.traces.otlp_wire import encode_task
from exporter.traces.spans import compact

ARRIVAL = 1795341700.0  # 2026-11-22T10:01:40Z
SINCE = "2026-11-22T09:00:00.000Z"

# Any text JSON can carry (orjson refuses lone surrogates), often with what forges or hides.
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(["\n2026 ERROR forged", "\x1b[2J", "\u202egpj.exe", "\x00", "", "\u2028"]),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["a", "é", "語", "\U0001f600"]), st.integers(60, 1200)
    ),
)
timestamps = st.one_of(
    st.integers(-(10**15), 10**16),  # epoch milliseconds, most out of any range
    st.integers(1795341000000, 1795341700000),  # the test day, before arrival
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59Z",
            "1969-12-31T23:59:59Z",
            "2026-11-22T10:00:00Z",
            "2026-11-22T11:00:00+01:00",
            "2026-11-22T12:00:00Z",  # 20 minutes after arrival: within the skew allowed
            253402300799000,
        ]
    ),
    texts,
    st.none(),
)
ids = st.one_of(st.sampled_from(["t-1", "t-2", "t-3"]), texts)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats())
anything: st.SearchStrategy[Any] = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.sampled_from(["id", "type", "alias", "x"]), scalars, max_size=2),
)


@st.composite
def hostile_data(draw: st.DrawFn) -> dict[str, Any]:
    """An update's data object whose every field may be hostile."""

    def field(values: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(values, values, values, anything))

    node = {
        "id": field(st.sampled_from(["n-1", "n-2"]) | texts),
        "type": field(texts),
        "alias": field(st.none() | texts),
    }
    return {
        "task_id": field(ids),
        "timestamp": draw(timestamps),
        "updateId": field(texts),
        "name": field(st.none() | texts),
        "rootTaskId": field(st.none() | ids),
        "node": field(st.just(node)),
        "error": field(texts),
        "reason": field(texts),
    }


events = st.lists(
    st.builds(
        lambda kind, position, data: RawEvent(kind, position, orjson.dumps(data)),
        st.sampled_from([*UPDATE_TYPES, "nodeError", "taskError", "unknown\x1b"]),
        st.one_of(st.none(), st.integers(0, 60).map(str), st.sampled_from(["9" * 30, "x"])),
        hostile_data(),
    ),
    max_size=20,
)


def _event(kind: str, data: dict[str, Any]) -> RawEvent:
    return RawEvent(kind, None, orjson.dumps(data))


UNRENDERABLE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", 253402300799000]


class Spans:
    """A tracker observer that builds every finished task's spans as the span process would."""

    def __init__(self) -> None:
        self.encoded = 0

    def on_update(self, update: Update, task: TaskState) -> None:
        pass

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        pass

    def on_task_finished(self, task: FinishedTask) -> None:
        self.encoded += len(encode_task(compact(task)))


def deep_size(value: object, seen: set[int] | None = None) -> int:
    """The bytes `value` holds, counting each object reached once (strings, numbers, containers,
    slotted objects)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in value)
    elif hasattr(value, "__slots__"):
        size += sum(deep_size(getattr(value, n, None), seen) for n in value.__slots__)
    return size


def _worst_task() -> TaskState:
    """A task at every bound: the most nodes and finished attempts, every text at its longest
    (in 4-byte characters, the largest in memory)."""

    def text(i: int, limit: int = MAX_TEXT_BYTES) -> str:
        return (f"{i:06d}" + "\U0001f600" * limit)[: limit // 4]

    task = TaskState(text(0), text(1), text(2), 1.0, False)
    nodes = [Node(text(i), text(i + 1), text(i + 2)) for i in range(MAX_NODES_PER_TASK)]
    for i, node in enumerate(nodes):
        task.attempts[node.id] = 2**31 - 1 - i
        task.open[node.id] = (node, 2**31 - 1 - i, 1.5 + i)
    task.finished = tuple(
        NodeAttempt(
            nodes[i % len(nodes)],
            10**9 + i,
            2.5 + i,
            3.5 + i,
            "errored",
            text(i, MAX_MESSAGE_BYTES),
        )
        for i in range(MAX_ATTEMPTS_PER_TASK)
    )
    return task


WORST_TASK_BYTES = deep_size(_worst_task())


def assert_bounded(task: TaskState) -> None:
    """`task` holds no more than a task's bounds allow, and only times from its domain."""
    assert deep_size(task) <= WORST_TASK_BYTES
    assert len(task.attempts) <= MAX_NODES_PER_TASK
    assert len(task.finished) <= MAX_ATTEMPTS_PER_TASK
    nodes = [n for n, _, _ in task.open.values()] + [a.node for a in task.finished]
    texts = [task.task_id, task.name, task.root_id, *task.attempts, *(t for n in nodes for t in n)]
    assert all(len(t.encode()) <= MAX_TEXT_BYTES for t in texts if t is not None)
    messages = [a.message for a in task.finished if a.message is not None]
    assert all(len(m.encode()) <= MAX_MESSAGE_BYTES for m in messages)
    times = [task.start, task.last_seen, *(s for _, _, s in task.open.values())]
    times += [t for a in task.finished for t in (a.start, a.end)]
    assert all(0 <= t <= ARRIVAL + MAX_FUTURE_SECONDS for t in times)


def feed(batch: list[RawEvent]) -> Iterator[tuple[Tracker, Pipeline, Metrics, FailureRing, str]]:
    """Every event through the pipeline into every sink; yield what they hold."""
    status = StreamStatus(since=SINCE)
    metrics = Metrics(max_label_values=5, status=status, exemplars=True)
    ring = FailureRing(20)
    lines = io.StringIO()
    logger = logging.getLogger("test.hostile.failures")
    handler = logging.StreamHandler(lines)
    handler.setFormatter(TextFormatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    recorder = FailureRecorder(ring, [FailureLog(logger, per_second=1000)])
    tracker = Tracker(observers=[metrics, Spans()], failures=recorder, max_tasks=4, task_ttl=60.0)
    metrics.tracker = tracker
    pipeline = Pipeline(tracker=tracker, metrics=metrics, status=status)
    try:
        pipeline.feed(batch, ARRIVAL)
        yield tracker, pipeline, metrics, ring, lines.getvalue()
    finally:
        logger.removeHandler(handler)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
@example(
    [_event("taskError", {"task_id": "t-1", "timestamp": t, "reason": "x"}) for t in UNRENDERABLE]
)
@example(
    [_event("taskStart", {"task_id": "t" * 900, "timestamp": 1795341000000, "name": "é" * 900})]
)
def test_hostile_values_pass_through_every_sink_and_the_state_file(batch: list[RawEvent]) -> None:
    for tracker, pipeline, metrics, ring, log in feed(batch):
        # Every event is an update or a skip, counted once.
        samples = metrics.scalars()
        counted = {family.name: sum(v for _, v in rows) for family, rows in samples}
        total = counted["requence_exporter_updates"] + counted["requence_exporter_updates_skipped"]
        assert total == len(batch)
        metrics.render(openmetrics=True)
        # Every task within the bounds of one task's state, every time within its domain.
        for task in tracker.tasks():
            assert_bounded(task)
        for failure in ring:
            assert 0 <= failure.time <= ARRIVAL + MAX_FUTURE_SECONDS
        for family in text_string_to_metric_families(metrics.render()):
            for sample in family.samples:
                assert all(len(v.encode()) <= MAX_TEXT_BYTES for v in sample.labels.values())
        # Failures show on every page and in every line without raising or forging.
        view = StatusView("1", False, ARRIVAL, True, ARRIVAL, None, 0.0, 1.0, len(tracker),
                          None, ring.recent(), ring.total, "https://t/{trace_id}")  # fmt: skip
        page = render_status_page(view).decode()
        assert not any(c in page for c in "\x1b\u202e\u2028")
        assert failures_response(ring, {})[0] == 200
        assert len(log.splitlines()) == log.count("WARNING ")  # one line per record
        # The state file takes back what it was given, exactly.
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "state.json"
            snapshot = tracker.snapshot()
            StateFile(path).save(SavedState(SINCE, None, pipeline.recent_ids.ids(), snapshot))
            loaded = StateFile(path).load(max_tasks=4)
            assert loaded is not None
            # (Restoring orders tasks by their last update's server time.)
            restored = {t.task_id: t.row() for t in loaded.tracker.tasks.values()}
            assert restored == {t.task_id: t.row() for t in tracker.tasks()}
            assert sum(loaded.tracker.trims.cut.values()) == 0


def _paths(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _saved_document() -> dict[str, Any]:
    tracker = Tracker()
    node = Node("n-1", "service", "fetch")
    for i, kind in enumerate(["taskStart", "nodeStart", "nodeDefer", "nodeStart"]):
        tracker.apply(
            Update(i, kind, "t-1", 1795341000.0 + i, "invoice", "r", node if i else None, "m", None)
        )
    return {
        "version": 1,
        "saved_at": ARRIVAL,
        "since": SINCE,
        "position": 3,
        "recent_ids": ["u-1"],
        "last_update_timestamp": 1795341003.0,
        "tracker": tracker.snapshot(),
    }


DOCUMENT = _saved_document()
PATHS = [p for p in _paths(DOCUMENT) if p]


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _write(path: Path, document: Any, one_line: bool) -> None:
    """The document in the exporter's layout (one task per line) or in version 0.1.0's (one
    line), written here byte for byte: the exporter's writer refuses what is no state."""
    tracker = document.get("tracker") if isinstance(document, dict) else None
    if one_line or not isinstance(tracker, dict) or not isinstance(tracker.get("tasks"), list):
        path.write_bytes(_dumps(document))
        return
    head = {k: v for k, v in document.items() if k != "tracker"}
    head["tracker"] = {**{k: v for k, v in tracker.items() if k != "tasks"}, "tasks": []}
    tasks = b",\n".join(_dumps(task) for task in tracker["tasks"])
    path.write_bytes(_dumps(head)[: -len(b"]}}")] + b"\n" + tasks + b"\n]}}\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(texts, anything, timestamps)), max_size=4),
    st.booleans(),
)
@example([(("tracker", "tasks", 0, "id"), "t" * 1000)], False)
@example([(("tracker", "tasks", 0, "name"), "\U0001f600" * 100)], True)
@example([(("tracker", "tasks", 0, "start"), 253402351199.0)], False)
def test_a_state_file_with_hostile_values_loads_bounded_or_is_set_aside(
    changes: list[tuple[tuple[object, ...], object]], one_line: bool
) -> None:
    document = orjson.loads(orjson.dumps(DOCUMENT))
    for path, value in changes:
        target: Any = document
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a container on this path
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        _write(state, document, one_line)
        loaded = StateFile(state).load()
        if loaded is None:
            return  # set aside
        for task in loaded.tracker.tasks.values():
            assert_bounded(task)
