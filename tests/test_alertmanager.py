"""The shipped Alertmanager configuration: one notification per incident, from a real Alertmanager.

deploy/compose/alertmanager/alertmanager.yml routes pages and tickets and inhibits what repeats
an incident. The tests check it with amtool and run Debian's Alertmanager on 127.0.0.1 with that
file (only its receivers given a local webhook and its waits shortened), post the alerts of an
outage and count the notifications that arrive.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.prometheus import start_server, stop
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "compose" / "alertmanager" / "alertmanager.yml"
SETTLE_S = 4.0
DEADLINE_S = 30.0


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_config_is_valid() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=RequenceTaskErrorBudgetBurn", "severity=critical"], "page"),
        (["alertname=RequenceExporterDown", "severity=critical"], "page"),
        (["alertname=RequenceTaskErrorBudgetBurn", "severity=warning"], "ticket"),
        (["alertname=RequenceTaskQuietFailures", "severity=warning"], "ticket"),
    ],
)
def test_pages_and_tickets_are_routed_apart(labels: list[str], receiver: str) -> None:
    result = _amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


class _Webhook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path.strip("/"), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A real Alertmanager with the shipped routes and inhibitions; the notifications it sent."""
    binary = require_tool("prometheus-alertmanager")
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Webhook", (_Webhook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    hook = f"http://127.0.0.1:{server.server_address[1]}"
    for receiver in config["receivers"]:
        receiver["webhook_configs"] = [{"url": f"{hook}/{receiver['name']}"}]
    config["route"].update(group_wait="1s", group_interval="1s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = [binary, f"--config.file={path}", f"--storage.path={tmp_path / 'data'}"]
    try:
        proc, url = start_server([*argv, "--cluster.listen-address="], tmp_path, "alertmanager")
        try:
            yield url, received
        finally:
            stop(proc)
    finally:
        server.shutdown()
        server.server_close()


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, **labels}}


@pytest.mark.slow
def test_an_outage_is_one_page_and_no_ticket(
    alertmanager: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    """A task name's total outage fires both pages and both tickets of its budget burn, and a
    node alert; a disconnected exporter in another job hides that job's task alerts."""
    base, received = alertmanager
    team = {"namespace": "team1", "job": "requence-exporter"}
    checkout = {**team, "task_name": "checkout"}
    other = {"namespace": "team2", "job": "requence-exporter"}
    alerts = [
        _alert("RequenceTaskErrorBudgetBurn", "critical", long_window="1h", **checkout),
        _alert("RequenceTaskErrorBudgetBurn", "critical", long_window="6h", **checkout),
        _alert("RequenceTaskErrorBudgetBurn", "warning", long_window="1d", **checkout),
        _alert("RequenceTaskErrorBudgetBurn", "warning", long_window="3d", **checkout),
        _alert("RequenceNodeErrorsHigh", "warning", node="charge", **checkout),
        # The same task name and job in a third namespace is another release: ours leave it be.
        _alert("RequenceTaskAbortsSpiking", "warning", **{**checkout, "namespace": "team3"}),
        _alert("RequenceExporterDisconnected", "critical", instance="b:9721", **other),
        _alert("RequenceTaskErrorBudgetBurn", "critical", long_window="1h", **other, task_name="x"),
        _alert("RequenceTasksStuck", "warning", **other, task_name="ocr"),
    ]
    request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
        f"{base}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        assert answer.status == 200
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and len({r for r, _ in received}) < 1:
        time.sleep(0.2)
    time.sleep(SETTLE_S)  # later notifications, if the configuration let any through
    notified = sorted(
        (receiver, tuple(sorted(a["labels"]["alertname"] for a in body["alerts"])))
        for receiver, body in received
        if body["status"] == "firing"
    )
    # Ours: one page with both pairs. team2: the disconnection alone. team3: its ticket.
    assert notified == [
        ("page", ("RequenceExporterDisconnected",)),
        ("page", ("RequenceTaskErrorBudgetBurn", "RequenceTaskErrorBudgetBurn")),
        ("ticket", ("RequenceTaskAbortsSpiking",)),
    ], notified
