"""The status page at `/`: what is failing right now, read at a glance.

Rendered on the server as one self-contained HTML document: no script, no external asset, one
inline style allowed by its hash in the Content-Security-Policy, and a meta refresh. Every value
that came from the stream (task names, node names, reasons, ids) is escaped, as HTML and for its
control and bidirectional formatting characters (shown as `\u202e`, never applied), and links
are built only from the operator's `--trace-url-template` and hex trace ids.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final
from urllib.parse import quote

from exporter.core.logs import printable
from exporter.core.updates import NODE_ERROR, timestamp_in_range
from exporter.serving.activity import Window
from exporter.serving.failures import Failure

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PAGE_FAILURES",
    "REFRESH_SECONDS",
    "StatusView",
    "render_status_page",
    "top_failing",
    "trace_url",
]

REFRESH_SECONDS: Final = 5
PAGE_FAILURES: Final = 50  # failures shown in the table; /failures has them all
TOP: Final = 5
# From a 360 px phone up: a table wider than the screen scrolls sideways inside its own box
# (.wide), never the page; the reason column keeps room for words and breaks only a word too
# long for a line of its own.
_STYLE: Final = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fafafa}"
    "h1{font-size:1.4em;margin:0 0 .6em}h2{font-size:1.1em;margin:1.4em 0 .4em}"
    ".cards{display:flex;flex-wrap:wrap;gap:.8em}"
    ".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em .9em;"
    "min-width:9em}.card b{display:block;font-size:1.5em}.card span{color:#666;font-size:.85em}"
    ".ok{color:#1a7f37}.bad{color:#c62828}"
    ".wide{max-width:100%;overflow-x:auto}"
    "table{border-collapse:collapse;background:#fff;width:100%}"
    "th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}td.reason{font-family:ui-monospace,monospace;white-space:pre-wrap;"
    "overflow-wrap:break-word;min-width:14em;max-width:40em}td.num{text-align:right}"
    "td.time{white-space:nowrap}td.task,td.node{min-width:10em}"
    "a.trace,code{font-family:ui-monospace,monospace;font-size:.9em}"
    ".side{display:flex;flex-wrap:wrap;gap:0 2em}.side>div{max-width:100%}"
    ".side table{width:auto}"
    "h2 span,footer{color:#666;overflow-wrap:anywhere}footer{margin-top:1.5em}"
    "@media (max-width:600px){body{margin:.8em}"
    ".cards{display:grid;grid-template-columns:1fr 1fr}.card{min-width:0}}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# Nothing but the one inline style: no script at all, no images, frames, forms or plugins.
CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class StatusView:
    """Everything the page shows, read from the exporter's state at request time."""

    version: str
    compiled: bool
    now: float  # wall time
    connected: bool
    since: float  # wall time the stream connected or disconnected
    last_error: str | None
    last_update_age: float | None
    updates_per_second: float | None
    in_progress: int
    last_minute: Window | None
    failures: Sequence[Failure]  # newest first, all that are kept
    failures_total: int  # ever recorded
    trace_url_template: str | None


def _text(value: str) -> str:
    """A value from the stream as HTML text: markup and invisible formatting both escaped."""
    return escape(printable(value))


def trace_url(template: str, trace_id: str) -> str:
    """The template with `{trace_id}` replaced (trace ids are hex, so nothing to encode)."""
    return template.replace("{trace_id}", trace_id)


def top_failing(
    failures: Sequence[Failure],
) -> tuple[list[tuple[str, int]], list[tuple[str, str, str, int]]]:
    """Task names by task failures, and (task name, node, node type) by node errors."""
    tasks: Counter[str] = Counter()
    nodes: Counter[tuple[str, str, str]] = Counter()
    for failure in failures:
        name = failure.task_name or "unnamed"
        if failure.kind == NODE_ERROR:
            nodes[(name, failure.node or "", failure.node_type or "")] += 1
        else:
            tasks[name] += 1
    return tasks.most_common(TOP), [(*k, n) for k, n in nodes.most_common(TOP)]


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{max(seconds, 0.0):.1f} s ago"
    return _duration(seconds) + " ago"


def _clock(seconds: float) -> str:
    if not timestamp_in_range(seconds):  # the decoder never lets one through; a page never fails
        return "?"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _card(value: str, label: str, cls: str = "") -> str:
    klass = f" class='{cls}'" if cls else ""
    return f"<div class='card'><b{klass}>{value}</b><span>{label}</span></div>"


def _task_link(name: str | None) -> str:
    shown = _text(name or "unnamed")
    if name is None:
        return shown
    href = escape("/failures?task_name=" + quote(name, safe=""))
    return f"<a href='{href}'>{shown}</a>"


def _trace_cell(failure: Failure, template: str | None) -> str:
    trace = escape(failure.trace_id)
    if template is None:
        return f"<code>{trace}</code>"
    href = escape(trace_url(template, failure.trace_id))
    return f"<a class='trace' href='{href}' rel='noopener noreferrer'>{trace}</a>"


def _failure_row(failure: Failure, template: str | None) -> str:
    duration = "" if failure.duration is None else f"{failure.duration:.3f} s"
    node = _text(failure.node or "")
    if failure.node_type:
        node += f" <span>({_text(failure.node_type)})</span>"
    return (
        f"<tr class='failure'><td class='time'>{_clock(failure.time)}</td>"
        f"<td>{escape(failure.kind)}</td>"
        f"<td class='task'>{_task_link(failure.task_name)}</td><td class='node'>{node}</td>"
        f"<td class='reason'>{_text(failure.reason or '')}</td>"
        f"<td class='num'>{duration}</td><td>{_trace_cell(failure, template)}</td></tr>"
    )


def _stream_cards(view: StatusView) -> str:
    state = "connected" if view.connected else "disconnected"
    since = f"since {_clock(view.since)} UTC ({_duration(view.now - view.since)})"
    cards = [
        _card(state, escape(since), "ok" if view.connected else "bad"),
        _card(_age(view.last_update_age), "last update"),
        _card(
            "-" if view.updates_per_second is None else f"{view.updates_per_second:.1f}",
            "updates per second",
        ),
        _card(str(view.in_progress), "tasks in progress"),
    ]
    window = view.last_minute
    if window is not None:
        span = f"last {window.seconds:.0f} s"
        for outcome in ("started", "ended", "errored", "aborted"):
            cls = "bad" if outcome in {"errored", "aborted"} and window.tasks[outcome] else ""
            cards.append(_card(str(window.tasks[outcome]), f"tasks {outcome}, {span}", cls))
    html = "<div class='cards'>" + "".join(cards) + "</div>"
    if not view.connected and view.last_error:
        html += f"<p class='bad'>last error: {_text(view.last_error)}</p>"
    return html


def _top_tables(failures: Sequence[Failure]) -> str:
    tasks, nodes = top_failing(failures)
    task_rows = (
        "".join(
            f"<tr><td>{_task_link(name)}</td><td class='num'>{count}</td></tr>"
            for name, count in tasks
        )
        or "<tr><td colspan='2'>none</td></tr>"
    )
    node_rows = (
        "".join(
            f"<tr><td>{_text(node)} <span>({_text(kind)})</span></td><td>{_text(name)}</td>"
            f"<td class='num'>{count}</td></tr>"
            for name, node, kind, count in nodes
        )
        or "<tr><td colspan='3'>none</td></tr>"
    )
    return (
        "<div class='side'><div><h2>Top failing task names</h2><div class='wide'>"
        "<table id='top-tasks'>"
        f"<tr><th>task name</th><th>task failures</th></tr>{task_rows}</table></div></div>"
        "<div><h2>Top failing nodes</h2><div class='wide'><table id='top-nodes'>"
        f"<tr><th>node</th><th>task name</th><th>node errors</th></tr>{node_rows}</table>"
        "</div></div></div>"
    )


def render_status_page(view: StatusView) -> bytes:
    """The whole page as UTF-8 HTML."""
    shown = view.failures[:PAGE_FAILURES]
    rows = "".join(_failure_row(f, view.trace_url_template) for f in shown)
    if not rows:
        rows = "<tr><td colspan='7'>no failures seen yet</td></tr>"
    kept = len(view.failures)
    build = "compiled" if view.compiled else "pure Python"
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>requence-exporter</title><style>{_STYLE}</style></head><body>"
        "<h1>requence-exporter</h1>"
        f"{_stream_cards(view)}"
        f"{_top_tables(view.failures)}"
        f"<h2>Recent failures <span>({len(shown)} newest of {kept} kept, "
        f"{view.failures_total} since start; all as JSON: <a href='/failures'>/failures</a>)"
        "</span></h2><div class='wide'><table id='failures'><tr><th>time (UTC, server)</th>"
        "<th>kind</th><th>task name</th><th>node</th><th>reason</th><th>duration</th>"
        f"<th>trace</th></tr>{rows}</table></div>"
        f"<footer>version {escape(view.version)} ({build}) &middot; "
        "<a href='/metrics'>/metrics</a> &middot; <a href='/failures'>/failures</a> &middot; "
        "<a href='/status'>/status</a> &middot; <a href='/healthz'>/healthz</a> &middot; "
        f"<a href='/readyz'>/readyz</a> &middot; refreshes every {REFRESH_SECONDS} s</footer>"
        "</body></html>"
    )
    return page.encode()
