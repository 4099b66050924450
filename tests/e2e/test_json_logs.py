"""JSON logs carry their fields as fields: the start-up settings and each reconnect's reason.

The real exporter process, with `--log-format json`, against an API address where nothing
listens: it starts, then retries; every line is one JSON object whose message is plain text.
"""

from __future__ import annotations

import socket
from typing import Any

import orjson

from tests.e2e.process import ExporterProcess


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def entries(exporter: ExporterProcess) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in exporter.lines if line.startswith("{")]


def test_start_up_settings_and_reconnect_reasons_are_fields() -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    args = ["--api-url", api, "--log-format", "json", "--max-tracked-tasks", "321"]
    with ExporterProcess(args, {"REQUENCE_EXPORTER_BEARER_TOKEN": "not-shown"}) as exporter:
        exporter.wait_for(
            lambda: any("reconnecting" in e["message"] for e in entries(exporter)),
            what="a reconnect",
        )
        assert exporter.stop() == 0
    lines = [line for line in exporter.lines if line.strip()]
    assert all(line.startswith("{") for line in lines), exporter.log
    logged = entries(exporter)
    start = next(e for e in logged if "starting" in e["message"])
    assert start["api_url"] == api
    assert start["listen"] == "127.0.0.1:0"
    assert start["max_tracked_tasks"] == 321
    assert start["traces"] == "off"
    assert "{" not in start["message"]
    retry = next(e for e in logged if "reconnecting" in e["message"])
    assert retry["level"] == "warning"
    assert retry["reason"] == "unreachable"
    assert "ConnectError" in retry["error"]
    assert retry["retry_in_seconds"] > 0
    assert retry["position"] is None
    assert "not-shown" not in exporter.log
