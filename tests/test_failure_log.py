"""Failure log lines: one per failure, text or JSON with trace and span ids, capped per second."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from exporter.core.logs import JsonFormatter
from exporter.core.tracker import Tracker
from exporter.serving.failure_log import FailureLog, logfmt
from exporter.serving.failures import Failure, FailureRecorder, FailureRing
from tests.factories import SERVICE, Script

T = 1_763_805_600.0
TASK = "6b1c7c0e-1c52-4d8a-a1c8-3c8a4f1c2b9d"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stream() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines into a buffer, through the exporter's own formatter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.failures.json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, out
    logger.handlers.clear()


def failing_script() -> Script:
    s = Script()
    s.add("taskStart", TASK, T, name='bill"ing')
    s.add("nodeStart", TASK, T + 1, node=SERVICE, name='bill"ing')
    s.add("nodeError", TASK, T + 2, node=SERVICE, name='bill"ing', message="boom\nsecond line")
    s.add("taskError", TASK, T + 3, name='bill"ing', message="gave up")
    return s


def run(log: FailureLog) -> None:
    recorder = FailureRecorder(FailureRing(), [log])
    tracker = Tracker(failures=recorder)
    for update in failing_script().updates:
        tracker.apply(update)


def test_json_lines_hold_the_fields_with_trace_and_span_ids(
    stream: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = stream
    run(FailureLog(logger, json_fields=True, clock=Clock()))
    node, task = (orjson.loads(line) for line in out.getvalue().splitlines())
    trace = TASK.replace("-", "")
    assert node["level"] == "warning"
    assert node["message"] == 'nodeError task_name="bill\\"ing" node=fetch'
    expected_node = {
        "server_time": "2025-11-22T10:00:02.000Z",
        "kind": "nodeError",
        "task_id": TASK,
        "task_name": 'bill"ing',
        "root_task_id": None,
        "node": "fetch",
        "node_type": "service",
        "reason": "boom second line",
        "duration_seconds": 1.0,
        "trace_id": trace,
    }
    assert {k: node[k] for k in expected_node} == expected_node
    assert task["kind"] == "taskError"
    assert task["duration_seconds"] == 3.0
    assert task["reason"] == "gave up"
    assert task["trace_id"] == trace
    # Span ids: the node attempt's span for the node error, the task's span for the task.
    assert len(node["span_id"]) == len(task["span_id"]) == 16
    assert node["span_id"] != task["span_id"]


def test_text_lines_are_key_value_pairs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.failures.text")
    run(FailureLog(logging.getLogger("test.failures.text"), clock=Clock()))
    lines = [r.getMessage() for r in caplog.records if r.name == "test.failures.text"]
    assert len(lines) == 2
    assert lines[0].startswith("failure server_time=2025-11-22T10:00:02.000Z kind=nodeError ")
    assert 'task_name="bill\\"ing"' in lines[0]
    assert 'reason="boom second line"' in lines[0]
    assert "duration_seconds=1.0" in lines[0]
    assert f"trace_id={TASK.replace('-', '')}" in lines[1]
    assert "root_task_id=null" in lines[1]
    assert all("\n" not in line for line in lines)


def test_logfmt_quotes_what_needs_it() -> None:
    assert logfmt({"a": "plain-1.2:x", "b": "two words", "c": None, "d": 'q"\\'}) == (
        'a=plain-1.2:x b="two words" c=null d="q\\"\\\\"'
    )


def one(n: int) -> Failure:
    return Failure(
        time=T + n,
        kind="taskError",
        task_id=f"t-{n}",
        task_name="storm",
        root_task_id=None,
        node=None,
        node_id=None,
        node_type=None,
        reason="x",
        duration=None,
        trace_id="1" * 32,
        span_id="2" * 16,
    )


def test_a_storm_is_capped_per_second_and_the_rest_counted(
    stream: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = stream
    clock = Clock()
    log = FailureLog(logger, per_second=5, json_fields=True, clock=clock)
    for n in range(100):
        log(one(n))
    log.tick()  # the second is not over: nothing to report yet
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["task_id"] for line in lines] == [f"t-{n}" for n in range(5)]
    clock.now += 1.0
    log.tick()
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert lines[-1]["suppressed"] == 95
    assert "95 failure log lines suppressed" in lines[-1]["message"]
    # A new second writes again, and the suppressed count was reported once.
    for n in range(100, 103):
        log(one(n))
    clock.now += 5.0
    log.tick()
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line.get("task_id") for line in lines[6:]] == ["t-100", "t-101", "t-102"]
    assert sum(1 for line in lines if "suppressed" in line) == 1
    assert log.suppressed_total == 95


def test_suppressed_lines_are_reported_by_the_next_failure_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.failures.next")
    clock = Clock()
    log = FailureLog(logging.getLogger("test.failures.next"), per_second=1, clock=clock)
    log(one(1))
    log(one(2))
    log(one(3))
    clock.now += 1.5
    log(one(4))
    lines = [r.getMessage() for r in caplog.records if r.name == "test.failures.next"]
    assert len(lines) == 3
    assert "task_id=t-1" in lines[0]
    assert lines[1].endswith("suppressed=2")
    assert "task_id=t-4" in lines[2]
