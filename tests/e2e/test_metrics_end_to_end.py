"""The exporter process against a scripted stream over loopback: every metric exact."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.simulator.scripted import ScriptedServer
from tests.e2e.process import ExporterProcess
from tests.e2e.scripts import LAST, SCRIPT
from tests.e2e.servers import LoopThread, serve
from tests.tools import require_tool

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
PROCESS = {
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_cpu_seconds_total",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
}
# Every counter, written out by hand from the script above.
COUNTERS = {
    ("requence_tasks_started_total", (("task_name", "invoice"),)): 1,
    ("requence_tasks_started_total", (("task_name", "ocr"),)): 1,
    ("requence_tasks_started_total", (("task_name", "ocr-page"),)): 1,
    ("requence_tasks_ended_total", (("task_name", "invoice"),)): 1,
    ("requence_tasks_ended_total", (("task_name", "ocr-page"),)): 1,
    ("requence_tasks_errored_total", (("task_name", "ocr"),)): 1,
    ("requence_tasks_aborted_total", (("task_name", "report"),)): 1,
}
NODE_COUNTERS = {
    ("requence_nodes_started_total", "invoice", "fetch", "service"): 2,
    ("requence_nodes_started_total", "invoice", "spawn", "reference"): 1,
    ("requence_nodes_started_total", "ocr", "scan", "service"): 1,
    ("requence_nodes_started_total", "ocr-page", "node-page", "logic"): 1,
    ("requence_nodes_started_total", "report", "render", "service"): 1,
    ("requence_nodes_ended_total", "invoice", "fetch", "service"): 1,
    ("requence_nodes_ended_total", "invoice", "spawn", "reference"): 1,
    ("requence_nodes_ended_total", "ocr-page", "node-page", "logic"): 1,
    ("requence_nodes_ended_total", "report", "render", "service"): 1,
    ("requence_nodes_errored_total", "ocr", "scan", "service"): 1,
    ("requence_nodes_deferred_total", "invoice", "fetch", "service"): 1,
    ("requence_node_updates_total", "invoice", "fetch", "service"): 1,
}
# (task_name, outcome) -> (count, sum); the aborted task never showed its start: no duration.
TASK_DURATIONS = {
    ("invoice", "ended"): (1, 10.0),
    ("ocr", "errored"): (1, 5.5),
    ("ocr-page", "ended"): (1, 1.0),
}
NODE_DURATIONS = {
    ("invoice", "fetch", "service", "deferred"): (1, 2.0),
    ("invoice", "fetch", "service", "ended"): (1, 2.0),
    ("invoice", "spawn", "reference", "ended"): (1, 2.0),
    ("ocr", "scan", "service", "errored"): (1, 4.0),
    ("ocr-page", "node-page", "logic", "ended"): (1, 0.5),
    ("report", "render", "service", "ended"): (1, 1.0),
}
UPDATES_BY_TYPE = {
    "taskStart": 3,
    "nodeStart": 6,
    "nodeUpdate": 1,
    "nodeDefer": 1,
    "nodeEnd": 4,
    "nodeError": 1,
    "taskEnd": 2,
    "taskError": 1,
    "taskAborted": 1,
}


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.mark.slow
def test_every_counter_and_histogram_is_exact(loop: LoopThread) -> None:
    server = serve(loop, lambda: ScriptedServer(SCRIPT, bearer="b3arer"))
    assert isinstance(server, ScriptedServer)
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(LAST)
            samples = exporter.samples()
            metrics_text = exporter.get("/metrics").text
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    for (name, labels), expected in COUNTERS.items():
        assert value(name, **dict(labels)) == expected, (name, labels)
    for (name, task, node, node_type), expected in NODE_COUNTERS.items():
        assert value(name, task_name=task, node=node, node_type=node_type) == expected, name
    # Nothing else was counted: the listed series are all the update counters there are.
    counted = {
        k
        for k in samples
        if k[0].startswith(("requence_tasks_", "requence_nodes_", "requence_node_updates"))
        and k[0].endswith("_total")
    }
    assert len({k for k in counted if samples[k]}) == len(COUNTERS) + len(NODE_COUNTERS)
    # The others are the zeros of label sets seen: each task name has its four task counters
    # and each node its four node counters from its first update on (nodeUpdate is no outcome).
    task_names = {key[1][0][1] for key in COUNTERS}
    nodes = {key[1:] for key in NODE_COUNTERS}
    node_updates = sum(1 for key in NODE_COUNTERS if key[0] == "requence_node_updates_total")
    assert len(counted) == 4 * len(task_names) + 4 * len(nodes) + node_updates
    for (task, outcome), (count, total) in TASK_DURATIONS.items():
        labels = {"task_name": task, "outcome": outcome}
        assert value("requence_task_duration_seconds_count", **labels) == count
        assert value("requence_task_duration_seconds_sum", **labels) == total
    assert (
        value("requence_task_duration_seconds_count", task_name="report", outcome="aborted") is None
    )
    for (task, node, node_type, outcome), (count, total) in NODE_DURATIONS.items():
        labels = {"task_name": task, "node": node, "node_type": node_type, "outcome": outcome}
        assert value("requence_node_duration_seconds_count", **labels) == count
        assert value("requence_node_duration_seconds_sum", **labels) == total
    histograms = {k for k in samples if k[0] == "requence_node_duration_seconds_count"}
    assert len(histograms) == len(NODE_DURATIONS)
    # Bucket placement: the 2 s deferred fetch is under le=2.5 and above le=1.
    fetch = {"task_name": "invoice", "node": "fetch", "node_type": "service", "outcome": "deferred"}
    assert value("requence_node_duration_seconds_bucket", **fetch, le="2.5") == 1
    assert value("requence_node_duration_seconds_bucket", **fetch, le="1.0") == 0
    for kind, n in UPDATES_BY_TYPE.items():
        assert value("requence_exporter_updates_total", type=kind) == n
    assert value("requence_exporter_updates_skipped_total", reason="malformed_json") == 1
    assert value("requence_exporter_updates_skipped_total", reason="unknown_type") == 1
    assert value("requence_exporter_updates_skipped_total", reason="duplicate_position") == 0
    assert value("requence_exporter_incomplete_tasks_total") == 1
    assert value("requence_exporter_tracked_tasks") == 0
    assert value("requence_exporter_stream_connected") == 1
    assert value("requence_exporter_stream_position") == LAST
    assert value("requence_exporter_last_update_timestamp_seconds") == 1795341610.0
    for task in ("invoice", "ocr", "ocr-page", "report"):
        assert value("requence_tasks_in_progress", task_name=task) == 0
    assert value("requence_exporter_update_lag_seconds_count") == LAST - 2
    assert "_created" not in metrics_text
    # An observer never acknowledges, even when the terminal update asks for it.
    assert server.acks == []
    [request] = [r for r in server.requests if r.path == "/task/watch-all"]
    assert request.headers["authorization"] == "Bearer b3arer"

    promtool = require_tool("promtool")
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=metrics_text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_wrong_token_exits_2_with_one_clear_line(loop: LoopThread) -> None:
    server = serve(loop, lambda: ScriptedServer(SCRIPT, bearer="right"))
    assert isinstance(server, ScriptedServer)
    try:
        from exporter.requence.token import encode_token

        token = encode_token("wrong-secret-value", server.base_url)
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": token}) as exporter:
            assert exporter.proc is not None
            assert exporter.proc.wait(20) == 2
            log = exporter.log
    finally:
        loop.run(server.aclose())
    assert "refused the bearer token (HTTP 401)" in log
    assert "REQUENCE_ACCESS_TOKEN" in log
    assert "wrong-secret-value" not in log
    assert token not in log


def test_missing_token_exits_2_naming_what_to_set() -> None:
    import os
    import sys

    from tests.e2e.process import ROOT

    env = {k: v for k, v in os.environ.items() if "REQUENCE" not in k}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--access-token" in lines[0]
    assert "REQUENCE_ACCESS_TOKEN" in lines[0]
    assert shutil.which("true")  # the environment is sane


@pytest.mark.slow
def test_process_metrics_describe_the_exporter_process(loop: LoopThread) -> None:
    """Memory, CPU, start time and fds of the exporter's own process, in both formats."""
    server = serve(loop, lambda: ScriptedServer(SCRIPT, bearer="b"))
    assert isinstance(server, ScriptedServer)
    launched = time.time()
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": server.access_token}) as exporter:
            exporter.wait_position(LAST)
            listening = time.time()
            text = exporter.get("/metrics").text
            om = exporter.get("/metrics", headers={"Accept": OPENMETRICS}).text
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc: the process collector has nothing to read")
    for body, parse in ((text, parse_text), (om, parse_om)):
        found = {s.name: s.value for f in parse(body) for s in f.samples if s.name in PROCESS}
        assert set(found) == PROCESS
        # Clock ticks round the start time down to 10 ms.
        assert launched - 1 <= found["process_start_time_seconds"] <= listening
        assert found["process_resident_memory_bytes"] > 0
        assert found["process_cpu_seconds_total"] > 0
        assert 0 < found["process_open_fds"] <= found["process_max_fds"]
