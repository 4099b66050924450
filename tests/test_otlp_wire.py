"""The hand-written OTLP encoder, decoded with opentelemetry-proto and compared field by field
with what the OpenTelemetry SDK's encoder makes of the same tasks (`tests/sdk_spans.py`)."""

from __future__ import annotations

import itertools
import struct
import uuid

import orjson
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status as RpcStatus
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from exporter import __version__
from exporter.core.tasks import FinishedTask, NodeAttempt, TaskState
from exporter.core.tracker import Tracker
from exporter.requence.decode import Skip, decode_update
from exporter.simulator.workload import Workload
from exporter.traces.otlp_config import TracingSettings
from exporter.traces.otlp_replies import partial_success, retry_delay, status_message
from exporter.traces.otlp_wire import (
    SCOPE_NAME,
    WireError,
    encode_task,
    export_request,
    resource_scope,
)
from exporter.traces.spans import CompactAttempt, CompactTask, compact
from tests.sdk_spans import sdk_request

RESOURCE = {"deployment.environment": "prod", "service.name": "requence"}
T = 1_763_805_600.125  # a server timestamp with milliseconds


def ours(
    tasks: list[CompactTask], resource: dict[str, str] = RESOURCE
) -> ExportTraceServiceRequest:
    """Our bytes for the tasks, decoded."""
    head = resource_scope(resource.items(), SCOPE_NAME, __version__)
    return ExportTraceServiceRequest.FromString(
        export_request(head, [encode_task(t) for t in tasks])
    )


def assert_same(tasks: list[CompactTask], resource: dict[str, str] = RESOURCE) -> None:
    """Our request equals the SDK's, span by span and then as a whole."""
    mine, theirs = ours(tasks, resource), sdk_request(tasks, resource)
    assert len(mine.resource_spans) == len(theirs.resource_spans) == 1
    (rs_mine,), (rs_theirs,) = mine.resource_spans, theirs.resource_spans
    assert rs_mine.resource == rs_theirs.resource
    assert len(rs_mine.scope_spans) == len(rs_theirs.scope_spans) == 1
    (ss_mine,), (ss_theirs,) = rs_mine.scope_spans, rs_theirs.scope_spans
    assert ss_mine.scope == ss_theirs.scope
    assert len(ss_mine.spans) == len(ss_theirs.spans) == sum(1 + len(t[8]) for t in tasks)
    for span_mine, span_theirs in zip(ss_mine.spans, ss_theirs.spans, strict=True):
        # Every field, including the presence of the (empty) status and of the flags.
        assert span_mine.ListFields() == span_theirs.ListFields()
    assert mine == theirs


def attempt(
    outcome: str = "ended",
    message: str | None = None,
    *,
    alias: str | None = "fetch",
    number: int = 1,
    node_type: str = "service",
) -> CompactAttempt:
    return (str(uuid.uuid4()), node_type, alias, number, T + 0.001, T + 0.25, outcome, message)


def task(
    outcome: str = "ended",
    message: str | None = None,
    *attempts: CompactAttempt,
    name: str | None = "order",
    root_id: str | None = None,
    incomplete: bool = False,
    task_id: str | None = None,
) -> CompactTask:
    task_id = task_id or str(uuid.uuid4())
    return (task_id, name, root_id, T, T + 1.5, outcome, message, incomplete, attempts)


def test_every_shape_of_task_and_attempt() -> None:
    top = str(uuid.uuid4())
    assert_same(
        [
            task("ended", None, attempt(), attempt(alias=None), attempt(alias="")),
            task("errored", "out of credits", attempt("errored", "boom"), attempt("interrupted")),
            task("errored", None, attempt("errored", None), attempt("errored", "")),
            task("errored", ""),
            task("aborted", "cancelled via API", attempt("deferred", "rate limited")),
            task("aborted", None, attempt("deferred", None), attempt("deferred", "", number=2)),
            task("evicted", None, attempt("interrupted"), incomplete=True),
            task("ended", None, name=None, incomplete=True),
            task("ended", None, name=""),
            task("ended", None, root_id=top, task_id=top),  # its own root: no parent
            task("ended", None, attempt(), root_id=top),  # a sub-task
            task("ended", None, root_id=""),
            task("ended", None, task_id="not-a-uuid"),
            task("ended", None, attempt(number=0), attempt(number=63), attempt(number=64)),
            task("ended", None, attempt(number=70_000), attempt(number=-3)),
        ]
    )


def test_long_and_unicode_values_take_multi_byte_lengths() -> None:
    long = "ü" * 20_000  # 40,000 bytes: a three-byte length inside a three-byte length
    assert_same(
        [
            task("errored", long, attempt("errored", long, alias="ñ" * 200), name="名前" * 100),
            task("aborted", "x" * 126, attempt("deferred", "y" * 255, alias="z" * 256)),
            task("ended", None, name="🙂", root_id="r" * 300),
        ]
    )


def test_a_full_batch_takes_a_multi_byte_length() -> None:
    tasks = [task("ended", None, attempt(), attempt()) for _ in range(200)]
    assert_same(tasks)


@pytest.mark.parametrize(
    "resource",
    [
        {"service.name": "requence"},
        {"k8s.namespace.name": "prod", "team": "ü" * 300, "service.name": "wf"},
        {"service.name": "x", "empty": ""},
    ],
)
def test_resource_and_scope(resource: dict[str, str]) -> None:
    assert_same([task()], resource)


def test_resource_is_the_settings_resource() -> None:
    settings = TracingSettings(
        service_name="wf", resource_attributes=(("a", "1"), ("service.name", "ignored"))
    )
    request = ours([task()], settings.resource())
    (resource_spans,) = request.resource_spans
    attributes = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert attributes == {"a": "1", "service.name": "wf"}
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == (SCOPE_NAME, __version__)


def test_timestamps_are_rounded_to_microseconds_first() -> None:
    item = task()
    start = 1_700_000_000.000_001  # not exact in binary
    item = (*item[:3], start, start + 0.000_002, *item[5:])
    (span,) = ours([item]).resource_spans[0].scope_spans[0].spans
    assert span.start_time_unix_nano == 1_700_000_000_000_001_000
    assert span.end_time_unix_nano == 1_700_000_000_000_003_000
    assert_same([item])


class Collect:
    """A tracker observer keeping the finished tasks in their compact form."""

    def __init__(self) -> None:
        self.tasks: list[CompactTask] = []

    def on_update(self, update: object, task: TaskState) -> None:
        """Nothing to do per update."""

    def on_node_attempt(self, task: TaskState, attempt: NodeAttempt) -> None:
        """Attempts arrive with their task."""

    def on_task_finished(self, task: FinishedTask) -> None:
        self.tasks.append(compact(task))


@pytest.mark.slow
def test_the_simulated_workload_encodes_as_the_sdk_does() -> None:
    collect = Collect()
    tracker = Tracker(observers=[collect])
    last = 0.0
    for position, update in enumerate(itertools.islice(Workload(11, rate=200.0), 20_000), 1):
        decoded = decode_update(update.type, orjson.dumps(update.data), position)
        assert not isinstance(decoded, Skip)
        tracker.apply(decoded)
        last = decoded.timestamp
    assert tracker.expire(last + 7 * 86_400.0) > 0  # the tasks still running are evicted
    outcomes = {t[5] for t in collect.tasks}
    assert outcomes == {"ended", "errored", "aborted", "evicted"}
    assert any(t[2] and t[2] != t[0] for t in collect.tasks)  # sub-tasks
    assert {a[6] for t in collect.tasks for a in t[8]} >= {"ended", "errored", "deferred"}
    for start in range(0, len(collect.tasks), 100):
        assert_same(collect.tasks[start : start + 100])


# -- random tasks ------------------------------------------------------------------------------

texts = st.text(max_size=300)
ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=60))
# Server timestamps: 1970 to 2100, any float.
times = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)
attempts = st.tuples(
    ids,
    texts,
    st.one_of(st.none(), texts),
    st.one_of(st.integers(1, 10), st.integers(-(2**63), 2**63 - 1)),
    times,
    times,
    st.sampled_from(["ended", "errored", "deferred", "interrupted"]),
    st.one_of(st.none(), texts),
)


@st.composite
def tasks(draw: st.DrawFn) -> CompactTask:
    task_id = draw(ids)
    root = draw(st.one_of(st.none(), st.just(task_id), st.just(""), ids))
    return (
        task_id,
        draw(st.one_of(st.none(), texts)),
        root,
        draw(times),
        draw(times),
        draw(st.sampled_from(["ended", "errored", "aborted", "evicted"])),
        draw(st.one_of(st.none(), texts)),
        draw(st.booleans()),
        tuple(draw(st.lists(attempts, max_size=4))),
    )


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(tasks(), min_size=1, max_size=5))
def test_random_tasks_encode_as_the_sdk_does(batch: list[CompactTask]) -> None:
    assert_same(batch)


# -- reading answers ---------------------------------------------------------------------------


def test_partial_success() -> None:
    answer = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=3, error_message="too old ü")
    ).SerializeToString()
    assert partial_success(answer) == (3, "too old ü")
    assert partial_success(b"") == (0, "")
    warning_only = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(error_message="slow down")
    )
    assert partial_success(warning_only.SerializeToString()) == (0, "slow down")


def test_status_message_and_retry_delay() -> None:
    assert status_message(RpcStatus(code=3, message="bad span").SerializeToString()) == "bad span"
    delay = RetryInfo(retry_delay=Duration(seconds=2, nanos=500_000_000)).SerializeToString()
    assert retry_delay(delay) == 2.5
    assert retry_delay(b"") is None


@pytest.mark.parametrize("data", [b"\x0a", b"\x0a\x05ab", b"\xff", b"\x0f", b"\x08\x80"])
def test_malformed_answers_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        partial_success(data)


@pytest.mark.parametrize(
    "item",
    [
        task("ended", None, attempt(number=2**63)),  # no int64
        task("ended", None, attempt(number=-(2**63) - 1)),
        (*task()[:3], -1.0, *task()[4:]),  # before 1970: no fixed64
        task(name="\ud800"),  # a lone surrogate: no UTF-8
    ],
    ids=["attempt-too-large", "attempt-too-small", "negative-time", "surrogate"],
)
def test_what_protobuf_cannot_carry_raises(item: CompactTask) -> None:
    # The SDK fails on these too; the span process then drops this task's spans only.
    with pytest.raises((ValueError, struct.error)):
        encode_task(item)
