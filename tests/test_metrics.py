"""The metrics sink: literal counts, durations, label bounds, and both exposition formats."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.core.ids import trace_id_hex
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.core.updates import Node
from exporter.metrics.exposition import wants_openmetrics
from exporter.metrics.store import Metrics
from tests.e2e.rig import parse
from tests.factories import LOGIC, SERVICE, Script
from tests.tools import require_tool

TASK = "6b1c7c0e-1c52-4d8a-a1c8-3c8a4f1c2b9d"


class Scrape:
    """Sample values read from a fresh render of the exposition, as Prometheus scrapes it."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return parse(self.metrics.render()).get((name, frozenset((labels or {}).items())))


def setup(**kwargs: object) -> tuple[Metrics, Tracker, Scrape]:
    metrics = Metrics(status=StreamStatus(), **kwargs)  # type: ignore[arg-type]
    tracker = Tracker(observers=[metrics])
    metrics.tracker = tracker
    return metrics, tracker, Scrape(metrics)


def test_counts_and_durations_of_a_task() -> None:
    metrics, tracker, reg = setup(exemplars=True)
    s = Script()
    s.add("taskStart", TASK, 100.0)
    s.add("nodeStart", TASK, 100.0, node=SERVICE)
    s.add("nodeUpdate", TASK, 100.1, node=SERVICE)
    s.add("nodeEnd", TASK, 100.25, node=SERVICE)
    s.add("nodeStart", TASK, 100.25, node=LOGIC)
    s.add("taskStart", "t2", 100.5, name=None)
    s.add("taskEnd", TASK, 103.0)
    for u in s.updates:
        tracker.apply(u)
    get = reg.get_sample_value
    assert get("requence_tasks_started_total", {"task_name": "invoice"}) == 1
    assert get("requence_tasks_started_total", {"task_name": "unnamed"}) == 1
    node = {"task_name": "invoice", "node": "fetch", "node_type": "service"}
    assert get("requence_nodes_started_total", node) == 1
    assert get("requence_node_updates_total", node) == 1
    ended = {**node, "outcome": "ended"}
    assert get("requence_node_duration_seconds_count", ended) == 1
    assert get("requence_node_duration_seconds_sum", ended) == 0.25
    assert get("requence_node_duration_seconds_bucket", {**ended, "le": "0.25"}) == 1
    assert get("requence_node_duration_seconds_bucket", {**ended, "le": "0.1"}) == 0
    interrupted = {
        "task_name": "invoice",
        "node": "check",
        "node_type": "logic",
        "outcome": "interrupted",
    }
    assert get("requence_node_duration_seconds_sum", interrupted) == 2.75
    task = {"task_name": "invoice", "outcome": "ended"}
    assert get("requence_task_duration_seconds_sum", task) == 3.0
    assert get("requence_tasks_in_progress", {"task_name": "invoice"}) == 0
    assert get("requence_tasks_in_progress", {"task_name": "unnamed"}) == 1
    assert get("requence_exporter_updates_total", {"type": "taskStart"}) == 2
    assert get("requence_exporter_updates_total", {"type": "taskAborted"}) == 0
    assert get("requence_exporter_tracked_tasks") == 1
    # The exemplar carries the task's trace id, for a jump from a latency panel to the trace.
    families = {f.name: f for f in parse_om(metrics.render(openmetrics=True))}
    exemplars = [
        s.exemplar for s in families["requence_task_duration_seconds"].samples if s.exemplar
    ]
    assert [e.labels["trace_id"] for e in exemplars] == [trace_id_hex(TASK)]


def test_label_values_past_the_bound_fold_into_other_and_are_counted() -> None:
    _metrics, tracker, reg = setup(max_label_values=2)
    s = Script()
    for i in range(5):
        s.add("taskStart", f"t{i}", float(i), name=f"name-{i}")
    for u in s.updates:
        tracker.apply(u)
    get = reg.get_sample_value
    assert get("requence_tasks_started_total", {"task_name": "name-0"}) == 1
    assert get("requence_tasks_started_total", {"task_name": "__other__"}) == 3
    assert get("requence_tasks_started_total", {"task_name": "name-4"}) is None
    assert get("requence_exporter_label_overflow_total", {"label": "task_name"}) >= 3
    assert get("requence_tasks_in_progress", {"task_name": "__other__"}) == 3


def test_node_label_is_the_alias_else_the_id() -> None:
    _metrics, tracker, reg = setup()
    s = Script()
    s.add("nodeStart", "t", 0.0, node=Node("node-uuid", "or", None))
    tracker.apply(s.updates[0])
    labels = {"task_name": "invoice", "node": "node-uuid", "node_type": "or"}
    assert reg.get_sample_value("requence_nodes_started_total", labels) == 1
    assert reg.get_sample_value("requence_exporter_incomplete_tasks_total") == 1


def test_no_created_series_and_text_and_openmetrics_agree() -> None:
    metrics, tracker, _ = setup(exemplars=True)
    s = Script()
    s.add("taskStart", "t", 0.0, name='we"ird\\name\n')
    s.add("taskError", "t", 1.5, name='we"ird\\name\n')
    for u in s.updates:
        tracker.apply(u)
    text, om = metrics.render(), metrics.render(openmetrics=True)
    assert "_created" not in text
    assert "_created" not in om
    assert om.endswith("# EOF\n")

    def samples(families: object) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples
        }  # type: ignore[attr-defined]

    assert samples(parse_text(text)) == samples(parse_om(om))
    assert ("requence_tasks_errored_total", (("task_name", 'we"ird\\name\n'),), 1.0) in samples(
        parse_text(text)
    )


def test_promtool_finds_no_problem() -> None:
    promtool = require_tool("promtool")
    metrics, tracker, _ = setup()
    s = Script()
    s.add("taskStart", "t", 0.0)
    s.add("nodeStart", "t", 0.0, node=SERVICE)
    s.add("taskEnd", "t", 2.0)
    for u in s.updates:
        tracker.apply(u)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=metrics.render(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            True,
        ),
        ("text/plain;version=0.0.4", False),
        ("application/openmetrics-text; q=0", False),
        (None, False),
    ],
)
def test_content_negotiation(accept: str | None, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


def test_outcome_counters_exist_at_zero_from_the_first_update_of_a_label_set() -> None:
    """rate() and increase() see the first error only if the series was scraped at 0 before."""
    _metrics, tracker, reg = setup(max_label_values=2)
    s = Script()
    s.add("taskStart", "t1", 0.0, name="invoice")
    s.add("nodeStart", "t1", 0.1, name="invoice", node=SERVICE)
    s.add("nodeStart", "t2", 0.2, name="refund", node=LOGIC)  # first seen without taskStart
    for i in range(3):  # past the label cap: folded into __other__
        s.add("taskStart", f"x{i}", 1.0 + i, name=f"extra-{i}")
    for u in s.updates:
        tracker.apply(u)
    get = reg.get_sample_value
    for name in ("invoice", "refund", "__other__"):
        for outcome in ("started", "ended", "errored", "aborted"):
            expected = (
                {"invoice": 1, "refund": 0, "__other__": 3}[name] if outcome == "started" else 0
            )
            assert get(f"requence_tasks_{outcome}_total", {"task_name": name}) == expected
    fetch = {"task_name": "invoice", "node": "fetch", "node_type": "service"}
    check = {"task_name": "refund", "node": "check", "node_type": "logic"}
    for labels in (fetch, check):
        assert get("requence_nodes_started_total", labels) == 1
        for outcome in ("ended", "errored", "deferred"):
            assert get(f"requence_nodes_{outcome}_total", labels) == 0
    # Nothing beyond the cap gets a series of its own.
    assert get("requence_tasks_errored_total", {"task_name": "extra-2"}) is None
    # A later error counts from the zero already exposed.
    error = Script()
    error.position = 100
    error.add("taskError", "t1", 5.0, name="invoice")
    tracker.apply(error.updates[0])
    assert get("requence_tasks_errored_total", {"task_name": "invoice"}) == 1


def test_restored_tasks_expose_their_outcome_counters_at_zero() -> None:
    """A replaced exporter is a new series to Prometheus: zeros before the first outcome."""
    _metrics, tracker, _ = setup()
    s = Script()
    s.add("taskStart", "t1", 0.0, name="invoice")
    s.add("nodeStart", "t1", 0.1, name="invoice", node=SERVICE)
    for u in s.updates:
        tracker.apply(u)
    metrics, restored, reg = setup()
    restored.restore(tracker.snapshot())
    metrics.restored(restored.tasks())
    get = reg.get_sample_value
    for outcome in ("started", "ended", "errored", "aborted"):
        assert get(f"requence_tasks_{outcome}_total", {"task_name": "invoice"}) == 0
    fetch = {"task_name": "invoice", "node": "fetch", "node_type": "service"}
    for outcome in ("started", "ended", "errored", "deferred"):
        assert get(f"requence_nodes_{outcome}_total", fetch) == 0
    assert get("requence_tasks_in_progress", {"task_name": "invoice"}) == 1


OLDEST = "requence_tasks_oldest_in_progress_start_timestamp_seconds"


def test_oldest_task_in_progress_is_a_start_timestamp_per_name_restored_with_the_state() -> None:
    """The oldest task's start, not the least recently updated one's; absent once none runs."""
    _metrics, tracker, reg = setup()
    s = Script()
    s.add("taskStart", "old", 100.0, name="report")
    s.add("taskStart", "new", 200.0, name="report")
    s.add("taskStart", "ocr", 150.0, name="ocr")
    # The old task is updated last, so it sits at the back of the tracker's order.
    s.add("nodeStart", "old", 300.0, name="report", node=SERVICE)
    for u in s.updates:
        tracker.apply(u)
    get = reg.get_sample_value
    assert get(OLDEST, {"task_name": "report"}) == 100.0
    assert get(OLDEST, {"task_name": "ocr"}) == 150.0
    metrics, restored, reg = setup()
    restored.restore(tracker.snapshot())
    metrics.restored(restored.tasks())
    assert reg.get_sample_value(OLDEST, {"task_name": "report"}) == 100.0
    for u in (
        Script().add("taskEnd", "old", 400.0, name="report"),
        Script().add("taskError", "ocr", 400.0, name="ocr"),
    ):
        restored.apply(u)
    assert reg.get_sample_value(OLDEST, {"task_name": "report"}) == 200.0
    assert reg.get_sample_value(OLDEST, {"task_name": "ocr"}) is None
    assert (
        "ocr"
        not in [line for line in metrics.render().splitlines() if line.startswith(OLDEST)].__str__()
    )
