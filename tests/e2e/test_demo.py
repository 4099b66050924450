"""`requence-exporter demo`: within seconds, task metrics on /metrics and a live summary."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.process import ROOT
from tests.helpers import free_port

pytestmark = pytest.mark.slow


def test_demo_shows_task_metrics_and_a_summary() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--listen",
            f"127.0.0.1:{port}",
            "--rate",
            "200",
            "--summary-every",
            "0.5",
        ],
        cwd=ROOT,
        # Traces off, whatever this shell exports.
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    started = 0.0
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and started == 0:
            time.sleep(0.25)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue
            started = sum(
                s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "requence_tasks_started_total"
            )
        while time.monotonic() < deadline and not any("tasks started" in x for x in lines):
            time.sleep(0.1)
    finally:
        proc.terminate()
        code = proc.wait(20)
        reader.join(5)
        proc.stdout.close()
    output = "".join(lines)
    assert started > 0, output
    assert code == 0, output
    assert f"http://127.0.0.1:{port}/metrics" in output
    assert any("updates/s" in x and "tasks started" in x for x in lines), output
    # The banner says what the SLO dashboard needs, and promises no exemplars with traces off.
    assert "grafana/alerts.yml" in output
    assert "recording rules the Requence / SLOs dashboard reads" in output
    assert "Traces are off, so latency buckets carry no exemplars" in output
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in output
