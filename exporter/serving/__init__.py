"""The HTTP side: the server, the exporter's endpoints, TLS and basic auth.

`http_server`, `http_request` and `http_exchange` (a small asyncio HTTP/1.1 server on h11,
with its limits, also used by the simulator), `endpoints` (/metrics, /healthz, /readyz,
/status, the landing page), `webconfig` (the web config file: TLS, headers) and `basicauth`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PER_SECOND",
    "DEFAULT_RECENT_FAILURES",
    "FAILURE_KINDS",
    "FAILURE_LOGGER",
    "MAX_NAME_BYTES",
    "MAX_REASON_BYTES",
    "MAX_REMEMBERED_FAILURES",
    "MAX_WAITING_CHECKS",
    "MAX_WAITING_SUSPECT",
    "PAGE_FAILURES",
    "PROBE_PATHS",
    "REALM",
    "REFRESH_SECONDS",
    "Activity",
    "AsyncClosing",
    "BasicAuth",
    "BasicAuthHandler",
    "Busy",
    "ExporterEndpoints",
    "Failure",
    "FailureLog",
    "FailureRecorder",
    "FailureRing",
    "HTTPServer",
    "Handler",
    "Limits",
    "Request",
    "Responder",
    "StatusView",
    "Stream",
    "WebConfig",
    "Window",
    "clean_text",
    "failure_fields",
    "failures_response",
    "load_web_config",
    "logfmt",
    "parse_basic_credentials",
    "parse_web_config",
    "render_status_page",
    "top_failing",
    "trace_url",
]

if TYPE_CHECKING:
    from exporter.serving.activity import Activity, Window
    from exporter.serving.basicauth import (
        MAX_REMEMBERED_FAILURES,
        MAX_WAITING_CHECKS,
        MAX_WAITING_SUSPECT,
        PROBE_PATHS,
        REALM,
        BasicAuth,
        BasicAuthHandler,
        Busy,
        parse_basic_credentials,
    )
    from exporter.serving.endpoints import ExporterEndpoints
    from exporter.serving.failure_log import (
        DEFAULT_PER_SECOND,
        FAILURE_LOGGER,
        FailureLog,
        failure_fields,
        logfmt,
    )
    from exporter.serving.failures import (
        DEFAULT_MAX_BYTES,
        DEFAULT_RECENT_FAILURES,
        FAILURE_KINDS,
        MAX_NAME_BYTES,
        MAX_REASON_BYTES,
        Failure,
        FailureRecorder,
        FailureRing,
        clean_text,
    )
    from exporter.serving.failures_endpoint import failures_response
    from exporter.serving.http_exchange import AsyncClosing, Handler, Request, Responder, Stream
    from exporter.serving.http_request import Limits
    from exporter.serving.http_server import HTTPServer
    from exporter.serving.status_page import (
        CONTENT_SECURITY_POLICY,
        PAGE_FAILURES,
        REFRESH_SECONDS,
        StatusView,
        render_status_page,
        top_failing,
        trace_url,
    )
    from exporter.serving.webconfig import WebConfig, load_web_config, parse_web_config
else:
    # Each name is imported from its module on first use, so importing the package
    # loads only the modules used (the span process, for one, never loads the metrics).
    from exporter.core import lazy_exports

    _MODULES = {
        "Activity": "exporter.serving.activity",
        "AsyncClosing": "exporter.serving.http_exchange",
        "BasicAuth": "exporter.serving.basicauth",
        "BasicAuthHandler": "exporter.serving.basicauth",
        "Busy": "exporter.serving.basicauth",
        "CONTENT_SECURITY_POLICY": "exporter.serving.status_page",
        "DEFAULT_MAX_BYTES": "exporter.serving.failures",
        "DEFAULT_PER_SECOND": "exporter.serving.failure_log",
        "DEFAULT_RECENT_FAILURES": "exporter.serving.failures",
        "ExporterEndpoints": "exporter.serving.endpoints",
        "FAILURE_KINDS": "exporter.serving.failures",
        "FAILURE_LOGGER": "exporter.serving.failure_log",
        "Failure": "exporter.serving.failures",
        "FailureLog": "exporter.serving.failure_log",
        "FailureRecorder": "exporter.serving.failures",
        "FailureRing": "exporter.serving.failures",
        "HTTPServer": "exporter.serving.http_server",
        "Handler": "exporter.serving.http_exchange",
        "Limits": "exporter.serving.http_request",
        "MAX_NAME_BYTES": "exporter.serving.failures",
        "MAX_REASON_BYTES": "exporter.serving.failures",
        "MAX_REMEMBERED_FAILURES": "exporter.serving.basicauth",
        "MAX_WAITING_CHECKS": "exporter.serving.basicauth",
        "MAX_WAITING_SUSPECT": "exporter.serving.basicauth",
        "PAGE_FAILURES": "exporter.serving.status_page",
        "PROBE_PATHS": "exporter.serving.basicauth",
        "REALM": "exporter.serving.basicauth",
        "REFRESH_SECONDS": "exporter.serving.status_page",
        "Request": "exporter.serving.http_exchange",
        "Responder": "exporter.serving.http_exchange",
        "StatusView": "exporter.serving.status_page",
        "Stream": "exporter.serving.http_exchange",
        "WebConfig": "exporter.serving.webconfig",
        "Window": "exporter.serving.activity",
        "clean_text": "exporter.serving.failures",
        "failure_fields": "exporter.serving.failure_log",
        "failures_response": "exporter.serving.failures_endpoint",
        "load_web_config": "exporter.serving.webconfig",
        "logfmt": "exporter.serving.failure_log",
        "parse_basic_credentials": "exporter.serving.basicauth",
        "parse_web_config": "exporter.serving.webconfig",
        "render_status_page": "exporter.serving.status_page",
        "top_failing": "exporter.serving.status_page",
        "trace_url": "exporter.serving.status_page",
    }

    __getattr__ = lazy_exports(globals(), _MODULES)
