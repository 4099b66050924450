"""Secrets and payloads stay out of everything the exporter writes or serves.

The real exporter process runs with a recognisable bearer token (inside its access token) and a
state file, through faults that make it log (503s, a 401 after connecting, bad input), and is
stopped with SIGTERM. Neither secret may appear in its logs, /metrics, /status, the landing page
or the state file; payload content, error messages and task ids never become label values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.ids import trace_id_hex
from exporter.requence.token import encode_token
from exporter.simulator.scripted import (
    Action,
    Drop,
    Event,
    RawHead,
    Respond,
    ScriptedServer,
    Send,
)
from tests.e2e.process import ExporterProcess
from tests.e2e.rig import update
from tests.e2e.servers import LoopThread, serve
from tests.otlp_receiver import http_receiver

pytestmark = pytest.mark.slow

BEARER = "BEARER-5ecret-0f3a9c71d2e8"
OTLP_SECRET = "OTLP-5ecret-8b2d4e6f"
NODE = {"id": "node-render", "type": "service", "alias": "render"}
TASK_IDS = [f"TASKID-7e3b1c0a-{i:04d}" for i in range(3)]
# Strings that only ever travel inside payloads, error messages and reasons.
PAYLOAD = {
    "input": "PAYLOAD-INPUT-c0ffee11",
    "data": "PAYLOAD-DATA-c0ffee22",
    "output": "PAYLOAD-OUTPUT-c0ffee33",
    "result": "PAYLOAD-RESULT-c0ffee44",
    "error": "ERROR-MESSAGE-c0ffee55",
    "defer": "DEFER-REASON-c0ffee66",
    "task_error": "TASK-ERROR-c0ffee77",
    "aborted": "ABORT-REASON-c0ffee88",
}


def script() -> list[Event]:
    a, b, c = TASK_IDS
    return [
        Event("taskStart", update("taskStart", a, 0.0, "billing", input={"x": PAYLOAD["input"]})),
        Event("nodeStart", update("nodeStart", a, 1.0, "billing", node=NODE)),
        Event(
            "nodeUpdate",
            update(
                "nodeUpdate",
                a,
                2.0,
                "billing",
                node=NODE,
                data={"v": PAYLOAD["data"]},
                output=PAYLOAD["output"],
            ),
        ),
        Event(
            "nodeDefer", update("nodeDefer", a, 3.0, "billing", node=NODE, reason=PAYLOAD["defer"])
        ),
        Event("taskStart", update("taskStart", b, 3.5, "billing", input={"x": PAYLOAD["input"]})),
        Event("nodeUpdate", b'{"task_id": "' + b.encode() + b'", "oops"'),  # malformed
        Event("nodeStart", update("nodeStart", a, 4.0, "billing", node=NODE)),
        Event("nodeStart", update("nodeStart", b, 4.5, "billing", node=NODE)),
        Event(
            "nodeError", update("nodeError", b, 5.0, "billing", node=NODE, error=PAYLOAD["error"])
        ),
        Event("taskError", update("taskError", b, 5.5, "billing", reason=PAYLOAD["task_error"])),
        Event("nodeEnd", update("nodeEnd", a, 6.0, "billing", node=NODE)),
        Event("taskEnd", update("taskEnd", a, 7.0, "billing", result={"r": PAYLOAD["result"]})),
        Event("taskPaused", update("taskPaused", c, 7.5, "billing")),  # unknown type
        Event("nodeStart", update("nodeStart", c, 8.0, "billing", node=NODE)),
        Event("taskAborted", update("taskAborted", c, 9.0, "billing", reason=PAYLOAD["aborted"])),
    ]


PLANS: list[list[Action]] = [
    [Send(5), Drop()],
    [Respond(503)],
    [Respond(503)],
    [Send(5), Drop()],
    [Respond(401, b'{"error":"unauthorized"}', "application/json")],
    [Send()],
]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def label_values(text: str) -> set[str]:
    """Every label value in a Prometheus text exposition."""
    return {
        value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        for value in s.labels.values()
    }


@pytest.mark.parametrize(
    ("level", "fmt", "traces"),
    [("info", "text", False), ("debug", "json", False), ("info", "json", True)],
    ids=["text", "json-debug", "traces"],
)
def test_no_secret_or_payload_leaks_anywhere(
    loop: LoopThread, tmp_path: Path, level: str, fmt: str, traces: bool
) -> None:
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if traces:
            url, received = stack.enter_context(http_receiver())
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
            env["OTEL_EXPORTER_OTLP_HEADERS"] = f"Authorization=Bearer {OTLP_SECRET}"
        run_and_check(loop, tmp_path, ["--log-level", level, "--log-format", fmt], env, traces)
    if traces:
        assert received.headers[0]["authorization"] == f"Bearer {OTLP_SECRET}"


def run_and_check(
    loop: LoopThread, tmp_path: Path, args: list[str], env: dict[str, str], traces: bool
) -> None:
    """Run the exporter through the faults, stop it, and look for leaks everywhere."""
    events = script()
    server = serve(loop, lambda: ScriptedServer(events, PLANS, bearer=BEARER))
    assert isinstance(server, ScriptedServer)
    token = encode_token(BEARER, server.base_url)
    state = tmp_path / "state.json"
    args = ["--state-file", str(state), *args]
    try:
        with ExporterProcess(args, {"REQUENCE_ACCESS_TOKEN": token, **env}) as exporter:
            exporter.wait_position(len(events))
            assert exporter.value("requence_exporter_reconnects_total", reason="unreachable") == 2
            assert exporter.value("requence_exporter_reconnects_total", reason="unauthorized") == 1
            assert exporter.value("requence_exporter_reconnects_total", reason="dropped") == 2
            text = exporter.get("/metrics").text
            openmetrics = exporter.get(
                "/metrics", headers={"Accept": "application/openmetrics-text"}
            ).text
            status = exporter.get("/status").text
            landing = exporter.get("/").text
            assert exporter.stop() == 0
            log = exporter.log
    finally:
        loop.run(server.aclose())
    saved = state.read_text()

    # The faults did produce logs worth checking, and the stream did use the bearer.
    assert "watch-all stream unauthorized" in log
    assert "watch-all stream unreachable" in log
    assert "skipped update" in log
    assert all(r.headers["authorization"] == f"Bearer {BEARER}" for r in server.requests)
    assert openmetrics.endswith("# EOF\n")
    assert TASK_IDS[0] in saved  # the state file holds the tasks (and is checked below)

    places = {
        "log": log,
        "/metrics": text,
        "/metrics (OpenMetrics)": openmetrics,
        "/status": status,
        "/": landing,
        "state file": saved,
    }
    for where, content in places.items():
        assert BEARER not in content, f"the bearer token appears in the {where}"
        assert token not in content, f"the access token appears in the {where}"
        assert token[:40] not in content, f"part of the access token appears in the {where}"
        assert OTLP_SECRET not in content, f"the OTLP header appears in the {where}"

    values = label_values(text) | {
        value
        for family in openmetrics_families(openmetrics)
        for s in family.samples
        for value in s.labels.values()
    }
    assert {"billing", "render", "service"} <= values  # labels were read
    for secret in PAYLOAD.values():
        assert not any(secret in value for value in values), secret
        assert secret not in text
        assert secret not in openmetrics
    for task_id in TASK_IDS:
        # A task id has no business in /metrics; with traces on, only its trace id appears,
        # as an exemplar, and only in OpenMetrics.
        assert task_id not in text
        assert task_id not in openmetrics
    exemplars = {
        s.exemplar.labels["trace_id"]
        for family in openmetrics_families(openmetrics)
        for s in family.samples
        if s.exemplar is not None
    }
    assert "trace_id" not in text
    if traces:
        assert exemplars == {trace_id_hex(task_id, None) for task_id in TASK_IDS}
    else:
        assert exemplars == set()


# Answers of a server that echoes the request's Authorization header (the bearer token) where
# the HTTP stack's messages, or the exporter's own, would quote it.
ECHOES: list[tuple[str, bytes]] = [
    ("header line", b"HTTP/1.1 200 OK\r\nX-Echo: {authorization}\x01\r\n\r\n"),
    ("status line", b"HTTP/1.1 200 {authorization}\x01\r\n\r\n"),
    ("content type", b"HTTP/1.1 200 OK\r\nContent-Type: text/{authorization}\r\n\r\n"),
    (
        "content encoding",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Content-Encoding: {authorization}\r\n\r\n",
    ),
    ("401 body", b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n{authorization}"),
    ("redirect", b"HTTP/1.1 302 Found\r\nLocation: /{authorization}\r\nContent-Length: 0\r\n\r\n"),
]
PAGES = ("/", "/status", "/failures", "/metrics", "/healthz", "/readyz")


def test_a_server_echoing_the_token_never_gets_it_shown_or_logged(loop: LoopThread) -> None:
    events = [
        Event("taskStart", update("taskStart", f"task-{i}", float(i), "billing"))
        for i in range(len(ECHOES) + 2)
    ]
    # A good connection first (so a 401 is retried) and after each echo (so backoff restarts).
    plans: list[list[Action]] = [[Send(1), Drop()]]
    for _, answer in ECHOES:
        plans += [[RawHead(answer)], [Send(1), Drop()]]
    server = serve(loop, lambda: ScriptedServer(events, plans, bearer=BEARER))
    assert isinstance(server, ScriptedServer)
    token = encode_token(BEARER, server.base_url)
    try:
        with ExporterProcess([], {"REQUENCE_ACCESS_TOKEN": token}) as exporter:
            for case, (what, _) in enumerate(ECHOES, start=1):

                def failed(n: int = case) -> bool:
                    return sum(exporter.get("/status").json()["reconnects"].values()) >= 2 * n

                exporter.wait_for(failed, what=f"the {what} echo to fail the connection")
                for page in PAGES:
                    text = exporter.get(page).text
                    assert BEARER not in text, f"{what}: the bearer token appears in {page}"
                assert BEARER not in exporter.log, f"{what}: the bearer token is logged"
            last_error = exporter.get("/status").json()["last_error"]
            assert exporter.stop() == 0
    finally:
        loop.run(server.aclose())
    # The echoes did reach the exporter (the server saw the bearer, and each was a failure).
    assert all(r.headers["authorization"] == f"Bearer {BEARER}" for r in server.requests)
    assert last_error is not None
