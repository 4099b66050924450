"""The failure ring and its recorder, fed by a real tracker; `/failures` query handling."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporter import __version__
from exporter.config import settings_for
from exporter.core.errors import ConfigError
from exporter.core.ids import task_span_id
from exporter.core.tasks import FinishedTask
from exporter.core.tracker import Tracker
from exporter.requence.token import encode_token
from exporter.serving.failures import (
    FAILURE_OVERHEAD_BYTES,
    MAX_NAME_BYTES,
    MAX_REASON_BYTES,
    Failure,
    FailureRecorder,
    FailureRing,
    clean_text,
    failures_response,
)
from exporter.traces.otlp_wire import SCOPE_NAME, encode_task, export_request, resource_scope
from exporter.traces.spans import compact
from tests.factories import SERVICE, Script, vars_of

T = 1_763_805_600.0
ROOT = "6b1c7c0e-1c52-4d8a-a1c8-3c8a4f1c2b9d"
SUB = "0e9f0144-5ddb-4f55-a531-66f6a5e9b8e5"


def failure(n: int, *, name: str = "invoice", kind: str = "taskError", reason: str = "") -> Failure:
    """A plain failure numbered `n` (its time and task id)."""
    return Failure(
        time=T + n,
        kind=kind,
        task_id=f"task-{n}",
        task_name=name,
        root_task_id=None,
        node=None,
        node_id=None,
        node_type=None,
        reason=reason,
        duration=None,
        trace_id="0" * 31 + "1",
        span_id="0" * 15 + "1",
    )


class Heard:
    """A listener that keeps what it hears."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def __call__(self, item: Failure) -> None:
        self.failures.append(item)


class Finished:
    """An observer that keeps finished tasks (what the traces sink would encode)."""

    def __init__(self) -> None:
        self.tasks: list[FinishedTask] = []

    def on_update(self, *_: object) -> None:
        """Nothing per update."""

    def on_node_attempt(self, *_: object) -> None:
        """Nothing per attempt."""

    def on_task_finished(self, task: FinishedTask) -> None:
        """Keep it."""
        self.tasks.append(task)


def feed(script: Script, size: int = 200) -> tuple[FailureRing, Heard, Finished]:
    ring = FailureRing(size)
    heard = Heard()
    finished = Finished()
    recorder = FailureRecorder(ring, [heard])
    tracker = Tracker(observers=[finished], failures=recorder)
    for update in script.updates:
        tracker.apply(update)
    return ring, heard, finished


def test_ring_keeps_the_newest_in_count_and_serves_them_newest_first() -> None:
    ring = FailureRing(3)
    for n in range(10):
        ring.add(failure(n))
    assert len(ring) == 3
    assert ring.total == 10
    assert [f.task_id for f in ring.recent()] == ["task-9", "task-8", "task-7"]
    assert ring.bytes == sum(f.size for f in ring)


def test_ring_keeps_within_its_byte_budget_but_always_the_newest() -> None:
    one = failure(0, reason="x" * 500).size
    ring = FailureRing(100, max_bytes=3 * one)
    for n in range(10):
        ring.add(failure(n, reason="x" * 500))
    assert len(ring) == 3
    assert ring.bytes <= 3 * one
    huge = failure(99, reason="y" * 1000)
    small_ring = FailureRing(10, max_bytes=10)
    small_ring.add(failure(1))
    small_ring.add(huge)
    assert [f.task_id for f in small_ring.recent()] == ["task-99"]


def test_ring_filters_by_task_name_kind_and_limit() -> None:
    ring = FailureRing()
    kinds = ["taskError", "nodeError", "taskAborted"]
    for n in range(12):
        ring.add(failure(n, name=["a", "b"][n % 2], kind=kinds[n % 3]))
    ring.add(Failure(**{**vars_of(failure(12)), "task_name": None}))
    assert [f.task_id for f in ring.recent(task_name="a", kind="taskError")] == [
        "task-6",
        "task-0",
    ]
    assert [f.task_id for f in ring.recent(task_name="b", limit=2)] == ["task-11", "task-9"]
    assert [f.task_id for f in ring.recent(task_name="unnamed")] == ["task-12"]
    assert ring.recent(limit=0) == []
    assert len(ring.recent(kind="nodeError")) == 4


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_clean_text_removes_control_characters_and_cuts_on_a_character(text: str) -> None:
    cleaned = clean_text(text, MAX_REASON_BYTES)
    assert cleaned is not None
    assert len(cleaned.encode("utf-8", "replace")) <= MAX_REASON_BYTES
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in cleaned)
    assert "\u2028" not in cleaned
    if len(text.encode("utf-8", "replace")) <= MAX_REASON_BYTES and text.isprintable():
        assert cleaned == text


def test_clean_text_examples() -> None:
    assert clean_text("a\nb\r\n\tc\x00d\x1b[31m\x9be", 100) == "a b cd[31me"
    assert clean_text("é" * 600, MAX_REASON_BYTES) == "é" * 512
    assert clean_text("ab€", 4) == "ab"  # the euro sign's three bytes do not fit: dropped whole
    assert clean_text(None, 10) is None


def test_task_failures_carry_duration_reason_and_the_spans_trace_and_span_ids() -> None:
    s = Script()
    s.add("taskStart", ROOT, T, name="billing")
    s.add("taskStart", SUB, T + 1, name="charge", root=ROOT)
    s.add("taskError", SUB, T + 3.5, name="charge", root=ROOT, message="card\ndeclined")
    s.add("taskAborted", ROOT, T + 5, name="billing", message="cancelled by caller")
    s.add("taskEnd", "ok-task", T + 6, name="billing")  # incomplete and not a failure
    ring, heard, finished = feed(s)
    aborted, errored = ring.recent()
    assert errored.as_dict() == {
        "time": "2025-11-22T10:00:03.500Z",
        "kind": "taskError",
        "task_id": SUB,
        "task_name": "charge",
        "root_task_id": ROOT,
        "node": None,
        "node_type": None,
        "reason": "card declined",
        "duration_seconds": 2.5,
        "trace_id": ROOT.replace("-", ""),
    }
    assert aborted.kind == "taskAborted"
    assert aborted.duration == 5.0
    assert aborted.reason == "cancelled by caller"
    assert heard.failures == [errored, aborted]
    # The ids are those of the spans the traces sink sends for the same tasks.
    spans = spans_by_task(finished.tasks)
    for item in (errored, aborted):
        trace, span = spans[item.task_id]
        assert (item.trace_id, item.span_id) == (trace, span)


def spans_by_task(tasks: list[FinishedTask]) -> dict[str, tuple[str, str]]:
    """Task id -> (trace id, span id) of its task span, decoded from the OTLP encoding."""
    head = resource_scope([("service.name", "requence")], SCOPE_NAME, __version__)
    request = ExportTraceServiceRequest.FromString(
        export_request(head, [encode_task(compact(t)) for t in tasks])
    )
    out = {}
    for span in request.resource_spans[0].scope_spans[0].spans:
        attributes = {a.key: a.value.string_value for a in span.attributes}
        if "requence.task.id" in attributes:
            out[attributes["requence.task.id"]] = (span.trace_id.hex(), span.span_id.hex())
    return out


def test_node_errors_carry_the_attempts_duration_and_span_and_wait_for_nothing() -> None:
    s = Script()
    s.add("taskStart", ROOT, T, name="billing")
    s.add("nodeStart", ROOT, T + 1, node=SERVICE, name="billing")
    s.add("nodeError", ROOT, T + 1.75, node=SERVICE, name="billing", message="timeout")
    s.add("nodeStart", ROOT, T + 2, node=SERVICE, name="billing")
    s.add("nodeError", ROOT, T + 4, node=SERVICE, name="billing", message="timeout again")
    s.add("nodeError", "t-late", T + 5, node=SERVICE, name=None, message="no start seen")
    s.add("taskEnd", ROOT, T + 6, name="billing")
    ring, heard, finished = feed(s)
    late, second, first = ring.recent()
    assert (first.duration, second.duration) == (0.75, 2.0)
    assert (first.node, first.node_type, first.reason) == ("fetch", "service", "timeout")
    assert second.reason == "timeout again"
    assert late.duration is None
    assert late.task_name is None
    assert heard.failures == [first, second, late]
    node_spans = [
        span.span_id.hex()
        for span in ExportTraceServiceRequest.FromString(
            export_request(
                resource_scope([], SCOPE_NAME, __version__),
                [encode_task(compact(t)) for t in finished.tasks if t.task_id == ROOT],
            )
        )
        .resource_spans[0]
        .scope_spans[0]
        .spans
        if any(a.key == "requence.node.id" for a in span.attributes)
    ]
    assert [first.span_id, second.span_id] == node_spans
    assert first.trace_id == spans_by_task(finished.tasks)[ROOT][0]
    # Without a seen start there is no node span: the failure points at its task's span.
    assert late.span_id == format(task_span_id("t-late"), "016x")


class Calls:
    """A failure hook that counts what the tracker hands it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_node_error(self, update: object, task: object, attempt: object) -> None:
        """Count it."""
        self.calls.append("nodeError")

    def on_task_failed(self, task: FinishedTask) -> None:
        """Count it."""
        self.calls.append(task.outcome)


def test_the_failure_hook_hears_failures_only() -> None:
    # The hook is called for failures, not for every update: updates of healthy tasks, of
    # evicted ones and replays after a restart (`apply_quietly`) never reach it.
    s = Script()
    for n in range(50):
        task = f"ok-{n}"
        s.add("taskStart", task, T + n, name="billing")
        s.add("nodeStart", task, T + n, node=SERVICE, name="billing")
        s.add("nodeEnd", task, T + n + 0.5, node=SERVICE, name="billing")
        s.add("taskEnd", task, T + n + 1, name="billing")
    s.add("taskStart", ROOT, T + 60, name="billing")
    s.add("nodeStart", ROOT, T + 61, node=SERVICE, name="billing")
    s.add("nodeError", ROOT, T + 62, node=SERVICE, name="billing", message="boom")
    s.add("taskError", ROOT, T + 63, name="billing", message="gave up")
    s.add("taskStart", "quiet", T + 64, name="billing")
    s.add("taskAborted", "quiet", T + 65, name="billing")
    s.add("taskStart", "aborted", T + 66, name="billing")
    s.add("taskAborted", "aborted", T + 67, name="billing")
    hook = Calls()
    tracker = Tracker(failures=hook, max_tasks=2)
    quiet = [u for u in s.updates if u.task_id == "quiet"]
    for update in s.updates:
        (tracker.apply_quietly if update in quiet else tracker.apply)(update)
    for n in range(3):  # evicted at the cap: not failures
        tracker.apply(Script().add("taskStart", f"open-{n}", T + 70, name="x"))
    assert hook.calls == ["nodeError", "errored", "aborted"]


def test_names_and_reasons_are_cut_and_the_ring_stays_bounded_in_bytes() -> None:
    s = Script()
    for n in range(500):
        task = f"t-{n}"
        s.add("taskStart", task, T + n, name="n" * 5000)
        s.add("taskError", task, T + n + 0.5, name="n" * 5000, message="€" * 5000)
    ring, _heard, _finished = feed(s, size=200)
    assert len(ring) == 200
    newest = ring.recent(limit=1)[0]
    assert newest.task_name == "n" * MAX_NAME_BYTES
    assert newest.reason is not None
    assert len(newest.reason.encode()) <= MAX_REASON_BYTES
    assert newest.task_id == "t-499"
    most = FAILURE_OVERHEAD_BYTES + MAX_NAME_BYTES + MAX_REASON_BYTES + len("t-499")
    assert ring.bytes <= 200 * most


def test_failures_response_filters_and_rejects_bad_queries() -> None:
    ring = FailureRing()
    for n in range(5):
        ring.add(failure(n, name="a" if n % 2 else "b", kind="nodeError" if n > 2 else "taskError"))
    status, body = failures_response(ring, {"task_name": "a", "limit": "1"})
    assert status == 200
    assert [f["task_id"] for f in orjson.loads(body)["failures"]] == ["task-3"]
    status, body = failures_response(ring, {"kind": "taskError"})
    assert [f["task_id"] for f in orjson.loads(body)["failures"]] == ["task-2", "task-1", "task-0"]
    bad = [
        {"kind": "taskEnd"},
        {"limit": "0"},
        {"limit": "x"},
        {"limit": "²"},
        {"limit": "9" * 4301},  # int() refuses so many digits with an error of its own
        {"limit": "1" * 10},
        {"limit": "-1"},
        {"task_name": "n" * 1000},
        {"q": ""},
    ]
    for query in bad:
        status, body = failures_response(ring, query)
        assert status == 400, query
        assert "error" in orjson.loads(body)
    status, body = failures_response(ring, {"limit": "999999999"})
    assert (status, len(orjson.loads(body)["failures"])) == (200, 5)


@pytest.mark.parametrize("size", [0, -1])
def test_ring_refuses_no_room(size: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        FailureRing(size)


TOKEN_ENV = {"REQUENCE_ACCESS_TOKEN": encode_token("b", "https://x.invalid")}


def test_failure_flags_and_their_variables() -> None:
    defaults = settings_for([], TOKEN_ENV)
    assert (defaults.recent_failures, defaults.trace_url_template) == (200, None)
    assert (defaults.log_failures, defaults.log_failures_per_second) == (False, 20)
    env = {
        **TOKEN_ENV,
        "REQUENCE_EXPORTER_RECENT_FAILURES": "50",
        "REQUENCE_EXPORTER_TRACE_URL_TEMPLATE": "https://grafana.example/t/{trace_id}",
        "REQUENCE_EXPORTER_LOG_FAILURES": "true",
        "REQUENCE_EXPORTER_LOG_FAILURES_PER_SECOND": "3",
    }
    s = settings_for([], env)
    assert (s.recent_failures, s.log_failures, s.log_failures_per_second) == (50, True, 3)
    assert s.trace_url_template == "https://grafana.example/t/{trace_id}"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--recent-failures", "0"], "--recent-failures"),
        (["--log-failures-per-second", "many"], "--log-failures-per-second"),
        (["--trace-url-template", "https://jaeger.example/trace/"], "--trace-url-template"),
        (["--trace-url-template", "javascript:alert(1)//{trace_id}"], "--trace-url-template"),
    ],
)
def test_bad_failure_flags_name_the_flag_and_variable(argv: list[str], flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(argv, TOKEN_ENV)
    assert flag in str(info.value)
    assert "REQUENCE_EXPORTER_" in str(info.value)
