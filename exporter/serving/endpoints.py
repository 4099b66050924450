"""The exporter's HTTP endpoints: /metrics, /healthz, /readyz, /status, /failures and `/`."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import Any

import orjson

from exporter import __version__, is_compiled
from exporter.core.status import StreamStatus
from exporter.core.tracker import Tracker
from exporter.metrics.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    wants_openmetrics,
)
from exporter.metrics.store import Metrics
from exporter.serving.activity import Activity
from exporter.serving.failures import FailureRing, failures_response
from exporter.serving.http_exchange import Request, Responder
from exporter.serving.status_page import CONTENT_SECURITY_POLICY, StatusView, render_status_page

__all__ = ["ExporterEndpoints"]

_GZIP_MIN_BYTES = 4096
# Pages with task names and error texts: no shared or browser cache may keep a copy.
_NO_STORE = ("Cache-Control", "no-store")


class ExporterEndpoints:
    """Routes requests to the exporter's endpoints; the state it shows is read, never copied."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        tracker: Tracker,
        status: StreamStatus,
        is_alive: Callable[[], bool],
        is_ready: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        failures: FailureRing | None = None,
        activity: Activity | None = None,
        trace_url_template: str | None = None,
        on_scrape: Callable[[], None] | None = None,
    ) -> None:
        self._metrics = metrics
        self._failures = failures if failures is not None else FailureRing()
        self._activity = activity
        self._trace_url_template = trace_url_template
        self._on_scrape = on_scrape  # told after each /metrics render (the scrape mark)
        self._tracker = tracker
        self._status = status
        self._is_alive = is_alive
        self._is_ready = is_ready
        self._clock = clock
        self._page_bytes = 0  # the last /metrics page's size, before compression

    async def __call__(self, request: Request, respond: Responder) -> None:
        """Answer one request."""
        if request.method not in {"GET", "HEAD"}:
            respond.send(
                405,
                [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")],
                b"method not allowed\n",
            )
            return
        route = {
            "/metrics": self._metrics_page,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/status": self._status_page,
            "/failures": self._failures_page,
            "/": self._landing,
        }.get(request.path)
        if route is None:
            respond.send(404, [("Content-Type", "text/plain")], b"not found\n")
            return
        route(request, respond)

    def _metrics_page(self, request: Request, respond: Responder) -> None:
        if not respond.may_send(self._page_bytes):
            # Clients are not reading what they asked for: refuse before rendering again.
            respond.send(503, [("Retry-After", "1")], b"busy: too many responses not yet read\n")
            return
        openmetrics = wants_openmetrics(request.headers.get("accept"))
        body = self._metrics.render(openmetrics=openmetrics).encode()
        self._page_bytes = len(body)
        if self._on_scrape is not None:
            self._on_scrape()
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        headers = [("Content-Type", content_type)]
        if len(body) >= _GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        respond.send(200, headers, body)

    def _healthz(self, _request: Request, respond: Responder) -> None:
        alive = self._is_alive()
        respond.send(
            200 if alive else 503,
            [("Content-Type", "text/plain")],
            b"ok\n" if alive else b"stream loop not running\n",
        )

    def _readyz(self, _request: Request, respond: Responder) -> None:
        ready = self._is_ready()
        respond.send(
            200 if ready else 503,
            [("Content-Type", "text/plain")],
            b"ready\n" if ready else b"restoring state\n",
        )

    def status(self) -> dict[str, Any]:
        """What /status shows."""
        status = self._status
        age = None
        if status.last_update_timestamp is not None:
            age = round(max(self._clock() - status.last_update_timestamp, 0.0), 3)
        return {
            "version": __version__,
            "compiled": is_compiled(),
            "connected": status.connected,
            "position": status.position,
            "since": status.since,
            "stream_reader": status.reader or None,
            "last_update_age_seconds": age,
            "tracked_tasks": len(self._tracker),
            "connections": status.connections,
            "reconnects": dict(status.reconnects),
            "position_resets": status.position_resets,
            "last_error": status.last_error,
            "ready": self._is_ready(),
            # How late the loop ran its timers (the bucket bound the 99th percentile falls in):
            # every probe and scrape waited as long.
            "event_loop_lag_p99_seconds": self._metrics.loop_lag_quantile(0.99),
        }

    def _status_page(self, _request: Request, respond: Responder) -> None:
        respond.send(
            200,
            [("Content-Type", "application/json"), _NO_STORE],
            orjson.dumps(self.status(), option=orjson.OPT_INDENT_2),
        )

    def _failures_page(self, request: Request, respond: Responder) -> None:
        status, body = failures_response(self._failures, request.query)
        # The body holds text from the stream: never let a browser take it for HTML.
        headers = [
            ("Content-Type", "application/json"),
            ("X-Content-Type-Options", "nosniff"),
            _NO_STORE,
        ]
        respond.send(status, headers, body)

    def status_view(self) -> StatusView:
        """What the status page shows, read now."""
        status = self._status
        now = self._clock()
        age = None
        if status.last_update_timestamp is not None:
            age = now - status.last_update_timestamp
        activity = self._activity
        return StatusView(
            version=__version__,
            compiled=is_compiled(),
            now=now,
            connected=status.connected,
            since=activity.since if activity is not None else now,
            last_error=status.last_error,
            last_update_age=age,
            updates_per_second=activity.updates_per_second() if activity is not None else None,
            in_progress=len(self._tracker),
            last_minute=activity.last_minute() if activity is not None else None,
            failures=self._failures.recent(),
            failures_total=self._failures.total,
            trace_url_template=self._trace_url_template,
        )

    def _landing(self, _request: Request, respond: Responder) -> None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            _NO_STORE,
        ]
        respond.send(200, headers, render_status_page(self.status_view()))
