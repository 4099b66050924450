"""The exporter's HTTP endpoints: /metrics, /healthz, /readyz, /status and a landing page."""

from __future__ import annotations

import gzip
import html
import time
from collections.abc import Callable
from typing import Any

import orjson

from exporter import __version__, is_compiled
from exporter.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, wants_openmetrics
from exporter.metrics import Metrics
from exporter.status import StreamStatus
from exporter.tracker import Tracker
from exporter.web import Request, Responder

__all__ = ["ExporterEndpoints"]

_GZIP_MIN_BYTES = 4096


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
        on_scrape: Callable[[], None] | None = None,
    ) -> None:
        self._metrics = metrics
        self._on_scrape = on_scrape  # told after each /metrics render (the scrape mark)
        self._tracker = tracker
        self._status = status
        self._is_alive = is_alive
        self._is_ready = is_ready
        self._clock = clock

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
            "/": self._landing,
        }.get(request.path)
        if route is None:
            respond.send(404, [("Content-Type", "text/plain")], b"not found\n")
            return
        route(request, respond)

    def _metrics_page(self, request: Request, respond: Responder) -> None:
        openmetrics = wants_openmetrics(request.headers.get("accept"))
        body = self._metrics.render(openmetrics=openmetrics).encode()
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
            "last_update_age_seconds": age,
            "tracked_tasks": len(self._tracker),
            "connections": status.connections,
            "reconnects": dict(status.reconnects),
            "position_resets": status.position_resets,
            "last_error": status.last_error,
            "ready": self._is_ready(),
        }

    def _status_page(self, _request: Request, respond: Responder) -> None:
        respond.send(
            200,
            [("Content-Type", "application/json")],
            orjson.dumps(self.status(), option=orjson.OPT_INDENT_2),
        )

    def _landing(self, _request: Request, respond: Responder) -> None:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.status().items()
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>requence-exporter</title>"
            "</head><body><h1>requence-exporter</h1>"
            f"<table>{rows}</table><ul>"
            "<li><a href='/metrics'>/metrics</a> Prometheus metrics</li>"
            "<li><a href='/status'>/status</a> status as JSON</li>"
            "<li><a href='/healthz'>/healthz</a> liveness</li>"
            "<li><a href='/readyz'>/readyz</a> readiness</li></ul></body></html>"
        )
        respond.send(200, [("Content-Type", "text/html; charset=utf-8")], page.encode())
