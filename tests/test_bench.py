"""The benchmark harness runs end to end in its smoke mode and writes its JSON results.

Only the structure is checked: speed is reported by `make bench`, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter import is_compiled

pytestmark = pytest.mark.slow

BUILD = "compiled" if is_compiled() else "pure"
FLOORS = {"raw_socket", "httpx_sse", "httpx_sse_json", "httpx_sse_json_async"}
EXPORTER = {f"{name} {BUILD}" for name in ("exporter", "exporter_traces", "exporter_httpx")}


def test_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [written] = tmp_path.glob("*.json")
    results = json.loads(written.read_text())
    events = results["config"]["events"]
    assert events > 0
    for framing in ("coalesced", "per-event"):
        runs = results["stream"][framing]
        assert set(runs) == FLOORS | EXPORTER
        for run in runs.values():
            assert run["events_per_second"] > 0
        for name in EXPORTER:
            # The exporter really processed the whole stream, through the real pipeline.
            assert all(r["updates"] == events for r in runs[name]["runs"])
            # ... in the build this test runs against, each run in a process of its own.
            assert all(r["build"] == results["host"]["exporter_build"] for r in runs[name]["runs"])
        traced = runs[f"exporter_traces {BUILD}"]
        assert traced["spans_exported"] > 0
        assert traced["spans_dropped"] == 0
        assert results["ratios"][framing]["httpx_sse_json"] == 1.0
        assert set(results["ratios"][framing]) >= FLOORS | EXPORTER
    # The trickle: CPU per update of the floors and the exporter, fed by the simulator.
    trickle = results["trickle"]
    assert trickle["rate"] == 200
    for name in (
        "httpx_sse_json",
        "httpx_sse_json_async",
        f"exporter {BUILD}",
        f"exporter_httpx {BUILD}",
    ):
        [window] = trickle[name]["runs"]
        assert window["updates"] > 0
        assert window["cpu_seconds"] > 0
        assert trickle[name]["x_floor"] > 0
    assert trickle["httpx_sse_json"]["x_floor"] == 1.0
    assert trickle[f"exporter {BUILD}"]["runs"][0]["reads"] > 0
    for scrape in results["scrape"].values():
        assert scrape["series"] > 0
        assert scrape["http_seconds"] > 0
    memory = results["memory"][BUILD]
    assert memory["tracked"] == memory["cap"]
    assert memory["evicted"] == memory["tasks"] - memory["cap"]
    assert memory["bytes_per_task"] > 0
    ring = results["failure_memory"]
    assert ring["worst_case"]["failures"] == ring["typical"]["failures"] == 200
    assert 0 < ring["typical"]["bytes"] < ring["worst_case"]["bytes"]
    # Past the count the byte budget holds the ring: the measured memory stays near it.
    large = ring["worst_case_large"]
    assert large["failures"] < large["max_count"]
    assert large["budget_estimate_bytes"] <= large["budget_bytes"]
    assert large["bytes"] < 1.5 * large["budget_bytes"]
    # Which build was measured: the one this test runs against.
    build = "compiled" if is_compiled() else "pure Python"
    assert results["host"]["exporter_build"] == build
    assert f"builds: {build}" in done.stdout
    assert f"exporter {BUILD} " in done.stdout
    # The printed summary carries every figure.
    for word in (
        "x floor",
        "CPU us/update",
        "<- the floor",
        "/metrics @",
        "bytes per tracked task",
        "spans (coalesced,",
        "failure ring:",
    ):
        assert word in done.stdout
