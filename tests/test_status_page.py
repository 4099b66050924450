"""The status page's parts: activity from sampled counters, and the HTML with hostile values."""

from __future__ import annotations

import base64
import hashlib
import re

from exporter.core.status import StreamStatus
from exporter.serving.activity import Activity
from exporter.serving.failures import Failure
from exporter.serving.status_page import (
    CONTENT_SECURITY_POLICY,
    StatusView,
    render_status_page,
    top_failing,
)
from tests.factories import vars_of
from tests.hostile_html import IMG, QUOTE, SCRIPT, Collect

T = 1_763_805_600.0


class Counts:
    """Update counters the test sets, read as the metrics' `updates_by_type`."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def __call__(self) -> dict[str, int]:
        return dict(self.values)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> float:
        return self.now


def test_activity_rates_last_minute_and_connection_changes() -> None:
    counts, clock, status = Counts(), Clock(), StreamStatus()
    activity = Activity(counts, status, clock=clock)
    assert activity.updates_per_second() is None
    assert activity.last_minute() is None
    started_at = activity.since
    for second in range(90):
        counts.values = {
            "taskStart": second * 3,
            "taskEnd": second * 2,
            "taskError": second,
            "nodeStart": second * 4,
        }
        if second == 30:
            status.connected = True
            status.connections = 1
        activity.sample()
        clock.now += 1.0
    assert activity.connected
    assert activity.since == T + 30
    assert started_at == T
    rate = activity.updates_per_second()
    assert rate == 10.0  # 3 + 2 + 1 + 4 updates a second
    window = activity.last_minute()
    assert window is not None
    assert window.seconds == 60.0
    assert window.tasks == {"started": 180, "ended": 120, "errored": 60, "aborted": 0}
    # A reconnect between two samples (still connected at both) counts as a change.
    status.connections = 2
    activity.sample()
    assert activity.since == clock.now


def hostile(n: int, kind: str = "taskError") -> Failure:
    return Failure(
        time=T + n,
        kind=kind,
        task_id=f"{SCRIPT}-{n}",
        task_name=f"{SCRIPT}{IMG}",
        root_task_id=None,
        node=IMG if kind == "nodeError" else None,
        node_id=IMG if kind == "nodeError" else None,
        node_type=QUOTE if kind == "nodeError" else None,
        reason=f"{IMG} {SCRIPT} {QUOTE}",
        duration=1.5,
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
    )


def view(failures: list[Failure], template: str | None) -> StatusView:
    return StatusView(
        version="1.2.3",
        compiled=False,
        now=T + 100,
        connected=False,
        since=T,
        last_error=f"refused {SCRIPT}",
        last_update_age=12.5,
        updates_per_second=3.25,
        in_progress=7,
        last_minute=None,
        failures=failures,
        failures_total=len(failures),
        trace_url_template=template,
    )


def test_page_escapes_every_stream_value_and_links_only_to_traces() -> None:
    failures = [hostile(2, "nodeError"), hostile(1)]
    page = render_status_page(view(failures, "https://grafana.example/explore?t={trace_id}&x=1"))
    html = page.decode()
    parser = Collect()
    parser.feed(html)
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags
    assert "img" not in tags
    text = "".join(parser.text)
    assert SCRIPT in text  # shown as text
    assert IMG in text
    assert QUOTE in text
    hrefs = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert not any(h and h.startswith("javascript") for h in hrefs)
    traces = [attrs["href"] for tag, attrs in parser.tags if attrs.get("class") == "trace"]
    assert traces == [
        f"https://grafana.example/explore?t={2:032x}&x=1",
        f"https://grafana.example/explore?t={1:032x}&x=1",
    ]
    # Task names link to their failures, encoded into the query string.
    assert "/failures?task_name=%3Cscript%3Ewindow.pwned%3D1%3C%2Fscript%3E%22%3E%3Cimg" in "".join(
        h or "" for h in hrefs
    )
    assert "disconnectedsince 2025-11-22 10:00:00 UTC (100 s)" in text
    assert "12.5 s ago" in text
    assert "3.2" in text


def test_page_shows_bidi_and_control_characters_as_escapes_never_applied() -> None:
    failure = hostile(3, "nodeError")
    failure.task_name = "invoice\u202eexe.txt"
    failure.node = "fetch\u2066x\u2069"
    failure.reason = "bad\u202d scan\x1b[31m"
    page = render_status_page(view([failure], None)).decode()
    assert not any(c in page for c in "\u202e\u202d\u2066\u2069\x1b")
    parser = Collect()
    parser.feed(page)
    text = "".join(parser.text)
    assert "invoice\\u202eexe.txt" in text
    assert "fetch\\u2066x\\u2069" in text
    assert "bad\\u202d scan\\x1b[31m" in text


def test_page_without_a_template_shows_trace_ids_as_text() -> None:
    page = render_status_page(view([hostile(5)], None)).decode()
    parser = Collect()
    parser.feed(page)
    assert not [a for t, a in parser.tags if a.get("class") == "trace"]
    assert f"{5:032x}" in "".join(parser.text)


def test_csp_allows_the_one_inline_style_and_no_script() -> None:
    page = render_status_page(view([], None)).decode()
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY  # falls back to default-src 'none'
    assert "<script" not in page
    assert "no failures seen yet" in page


def test_top_failing_counts_task_failures_and_node_errors_apart() -> None:
    failures = [hostile(n, "nodeError" if n % 3 == 0 else "taskError") for n in range(9)]
    failures.append(
        Failure(
            **{
                **vars_of(failures[1]),
                "task_name": None,
            }
        )
    )
    tasks, nodes = top_failing(failures)
    assert tasks == [(f"{SCRIPT}{IMG}", 6), ("unnamed", 1)]
    assert nodes == [(f"{SCRIPT}{IMG}", IMG, QUOTE, 3)]
