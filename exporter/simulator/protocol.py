"""The server side of the watch-all protocol shared by the simulators: auth, body, SSE framing."""

from __future__ import annotations

import ssl
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from exporter.requence.token import encode_token
from exporter.serving.http_exchange import AsyncClosing, Request, Responder
from exporter.serving.http_request import Limits
from exporter.serving.http_server import HTTPServer

__all__ = [
    "ACK_PREFIX",
    "EVENT_STREAM_HEADERS",
    "KEEP_ALIVE",
    "WATCH_PATH",
    "BadWatchRequest",
    "RecordedRequest",
    "WatchParams",
    "WatchServer",
    "authorized",
    "parse_since",
    "parse_watch_body",
    "record",
    "send_json",
    "sse_event",
]

WATCH_PATH = "/task/watch-all"
ACK_PREFIX = "/task/ack/"
KEEP_ALIVE = b": keep-alive\n\n"
EVENT_STREAM_HEADERS = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
)


class RecordedRequest(NamedTuple):
    """A request as a simulator received it, for tests to inspect."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes


class WatchParams(NamedTuple):
    """The watch-all request body: `since` (epoch seconds) and the optional `lastPosition`."""

    since: float
    last_position: int | None


class BadWatchRequest(ValueError):
    """The watch-all body is not what the protocol asks for (answered with 400)."""


def record(request: Request) -> RecordedRequest:
    """Keep what a test may want to check about a request; the body is decoded when JSON."""
    try:
        body: Any = orjson.loads(request.body) if request.body else None
    except orjson.JSONDecodeError:
        body = None
    return RecordedRequest(request.method, request.path, request.headers, body, request.body)


def authorized(request: Request, bearer: str | None) -> bool:
    """Whether the request carries `Authorization: Bearer <bearer>` (any, when bearer is None)."""
    if bearer is None:
        return True
    return request.headers.get("authorization") == f"Bearer {bearer}"


def parse_since(text: str) -> float | None:
    """`since` as epoch seconds: ISO 8601 with an offset, or without one as local time.

    The Python SDK sends `datetime.now().isoformat()` (or a `date`'s): the client's local time
    with no offset. The simulator reads it as its own local time, which is the client's when
    both run on one machine, the way they do in a demo or a test.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    try:
        return moment.timestamp()  # a naive datetime counts as local time here
    except (OverflowError, OSError, ValueError):
        return None


def parse_watch_body(body: bytes) -> WatchParams:
    """Validate the JSON body: `since` (ISO 8601, required) and `lastPosition` (integer)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadWatchRequest("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadWatchRequest("the body is not a JSON object")
    since_text = payload.get("since")
    since = parse_since(since_text) if isinstance(since_text, str) else None
    if since is None:
        raise BadWatchRequest("`since` is required and must be an ISO 8601 timestamp")
    last = payload.get("lastPosition")
    if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < 0):
        raise BadWatchRequest("`lastPosition` must be a non-negative integer")
    return WatchParams(since, last)


def sse_event(kind: str, position: int, data: bytes) -> bytes:
    """One Server-Sent Event: `event:`, `id:` and a single-line `data:` (compact JSON)."""
    return b"event: %b\nid: %d\ndata: %b\n\n" % (kind.encode(), position, data)


def send_json(respond: Responder, status: int, payload: object) -> None:
    """Answer with a JSON document."""
    respond.send(status, [("Content-Type", "application/json")], orjson.dumps(payload))


class WatchServer(AsyncClosing):
    """What the stand-ins share: an HTTP server on loopback, its URL, and a token for it."""

    def __init__(self, bearer: str | None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.bearer = bearer
        # A stand-in for tests and the demo: its clients are ours, and may be slow readers
        # (an SDK fetching payloads between events) or many at once from one address.
        limits = Limits(max_connections_per_client=512, write_timeout=120.0, idle_timeout=60.0)
        self._http = HTTPServer(self._handle, limits=limits, ssl_context=ssl_context)
        self._address: tuple[str, int] | None = None

    async def _handle(self, request: Request, respond: Responder) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The API base URL clients connect to."""
        if self._address is None:
            raise RuntimeError("the server is not started")
        host, port = self._address
        return f"{'https' if self._http.tls else 'http'}://{host}:{port}"

    @property
    def access_token(self) -> str:
        """A Requence access token that points at this server."""
        return encode_token(self.bearer or "scripted", self.base_url)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on host:port; return the bound address."""
        self._address = await self._http.start(host, port)
        return self._address

    async def aclose(self) -> None:
        """Close the listener and every connection."""
        await self._http.aclose()
