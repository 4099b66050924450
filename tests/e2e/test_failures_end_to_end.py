"""Failures over the real stream: /failures, the status page, failure log lines, basic auth.

The real exporter process reads a scripted watch-all server whose task names, node names and
error texts hold HTML and script. /failures returns them as data, the page at `/` shows them as
text (no element of theirs exists), each JSON log line carries the trace and span ids, and the
web config's basic auth guards `/` and `/failures` while the probes stay open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bcrypt
import orjson
import pytest

from exporter.core.ids import trace_id_hex
from exporter.requence.token import encode_token
from exporter.serving.status_page import CONTENT_SECURITY_POLICY
from exporter.simulator.scripted import ScriptedServer
from tests.e2e.hostile_failures import BEARER, HOSTILE_NAME, OTHER, ROOT, SUB, script
from tests.e2e.process import ExporterProcess
from tests.e2e.servers import LoopThread, serve
from tests.hostile_html import IMG, SCRIPT, Collect

pytestmark = pytest.mark.slow

USER, PASSWORD = "oncall", "pager-pw"
TEMPLATE = "http://traces.example/trace/{trace_id}"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def test_failures_json_page_logs_and_auth_over_the_stream(loop: LoopThread, tmp_path: Path) -> None:
    events = script()
    server = serve(loop, lambda: ScriptedServer(events, bearer=BEARER))
    assert isinstance(server, ScriptedServer)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    args = [
        "--log-failures",
        "--log-format",
        "json",
        "--trace-url-template",
        TEMPLATE,
        "--web.config.file",
        str(web),
        "--recent-failures",
        "3",
    ]
    auth = (USER, PASSWORD)
    try:
        with ExporterProcess(
            args, {"REQUENCE_ACCESS_TOKEN": encode_token(BEARER, server.base_url)}
        ) as exporter:
            exporter.wait_for(
                lambda: len(exporter.get("/failures", auth=auth).json()["failures"]) == 3,
                what="three failures kept",
            )
            for path in ("/", "/failures", "/metrics", "/status"):
                assert exporter.get(path).status_code == 401, path
            assert exporter.get("/healthz").status_code == 200
            assert exporter.get("/readyz").status_code == 200
            everything = exporter.get("/failures", auth=auth).json()["failures"]
            only_tasks = exporter.get("/failures", params={"kind": "taskError"}, auth=auth).json()[
                "failures"
            ]
            by_name = exporter.get(
                "/failures", params={"task_name": HOSTILE_NAME, "limit": "1"}, auth=auth
            ).json()["failures"]
            bad = exporter.get("/failures", params={"kind": "nope"}, auth=auth)
            huge = exporter.get("/failures", params={"limit": "9" * 5000}, auth=auth)
            raw = exporter.get("/failures", auth=auth)
            page = exporter.get("/", auth=auth)
            status = exporter.get("/status", auth=auth)
            assert exporter.stop() == 0
            log = exporter.log
    finally:
        loop.run(server.aclose())

    trace = trace_id_hex(ROOT)
    # The ring holds three: the newest first; the sub-task's node error was pushed out.
    assert [(f["kind"], f["task_id"]) for f in everything] == [
        ("taskAborted", OTHER),
        ("taskError", ROOT),
        ("taskError", SUB),
    ]
    aborted, root_error, sub_error = everything
    assert root_error == {
        "time": "2026-11-22T10:00:05.000Z",
        "kind": "taskError",
        "task_id": ROOT,
        "task_name": HOSTILE_NAME,
        "root_task_id": None,
        "node": None,
        "node_type": None,
        "reason": SCRIPT,
        "duration_seconds": 5.0,
        "trace_id": trace,
    }
    assert sub_error["root_task_id"] == ROOT
    assert sub_error["trace_id"] == trace  # a sub-task lives in its root's trace
    assert sub_error["duration_seconds"] == 3.5
    assert aborted["trace_id"] == trace_id_hex(OTHER)
    assert [f["task_id"] for f in only_tasks] == [ROOT, SUB]
    assert [f["task_id"] for f in by_name] == [ROOT]
    assert bad.status_code == 400
    assert huge.status_code == 400
    assert "Traceback" not in log
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-content-type-options"] == "nosniff"
    # Task names and error texts: no proxy or browser cache keeps a copy.
    for response in (raw, page, status):
        assert response.headers["cache-control"] == "no-store"

    # The page: the hostile values are text, not elements; links only to traces and /failures.
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    parser = Collect()
    parser.feed(page.text)
    assert not [tag for tag, _ in parser.tags if tag in {"script", "img"}]
    text = "".join(parser.text)
    assert HOSTILE_NAME in text
    assert SCRIPT in text
    links = [a["href"] for t, a in parser.tags if t == "a" and a.get("class") == "trace"]
    assert links == [TEMPLATE.replace("{trace_id}", f["trace_id"]) for f in everything]

    # One JSON log line per failure, all four, with trace and span ids.
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    failures = [line for line in lines if line["logger"] == "exporter.serving.failures"]
    assert [(f["kind"], f["task_id"]) for f in failures] == [
        ("nodeError", SUB),
        ("taskError", SUB),
        ("taskError", ROOT),
        ("taskAborted", OTHER),
    ]
    node_error = failures[0]
    assert node_error["node"] == IMG
    assert node_error["reason"] == f"bad {SCRIPT} {IMG}"
    assert node_error["duration_seconds"] == 2.0
    assert node_error["trace_id"] == trace
    assert len({f["span_id"] for f in failures}) == 4
    assert all(len(f["span_id"]) == 16 for f in failures)
