"""Secrets and HTTP headers: values checked before they go into one, failures told without one.

A bearer token, an OTLP header or a basic auth user name with a line break, a control or a
non-ASCII character would be refused later by the HTTP stack, whose message quotes the whole
header, token included; checked at start-up instead, the problem is named and the value is not.
The HTTP stack's messages also quote what a server sent back, which may be our own header
echoed: `transport_failure` describes a failure by its class and the system's own words only.
"""

from __future__ import annotations

import ssl
from typing import Final

__all__ = ["header_value_problem", "transport_failure"]

# What each of the HTTP stack's failures means, in words of our own (httpx and h11 names).
_MEANINGS: Final = {
    "ConnectError": "could not connect",
    "ConnectTimeout": "connecting timed out",
    "ReadTimeout": "no data within the timeout",
    "WriteTimeout": "sending timed out",
    "PoolTimeout": "no free connection within the timeout",
    "ReadError": "reading the response failed",
    "WriteError": "sending the request failed",
    "CloseError": "closing the connection failed",
    "RemoteProtocolError": "the server broke the HTTP protocol",
    "LocalProtocolError": "the HTTP stack refused to send the request (a malformed header?)",
    "ProxyError": "the proxy refused the request",
    "UnsupportedProtocol": "the URL's scheme is not supported",
    "DecodingError": "the response could not be decoded",
    "TooManyRedirects": "too many redirects",
    "InvalidURL": "the URL is malformed",
}


def _kind(char: str) -> str:
    if char in "\r\n":
        return "a line break"
    if char in " \t":
        return "a space or tab"
    if char < " " or char == "\x7f":
        return "a control character"
    return "a non-ASCII character"


def header_value_problem(value: str, *, inner_spaces: bool = False) -> str | None:
    """Why `value` cannot go into an HTTP header as it is, never quoting it; None if it can.

    A value must be visible ASCII; `inner_spaces` also allows single spaces and tabs between
    visible characters (a header value such as `Bearer abc`), never at either end.
    """
    if not value:
        return "is empty"
    for index, char in enumerate(value):
        if "!" <= char <= "~":
            continue
        edge = index in (0, len(value) - 1)
        if inner_spaces and char in " \t" and not edge:
            continue
        return f"holds {_kind(char)} (character {index + 1} of {len(value)})"
    return None


def transport_failure(exc: BaseException) -> str:
    """`exc`, a failure of the HTTP stack, told without its message: its class, and the TLS
    library's or the system's reason when one caused it (those never quote request bytes)."""
    name = type(exc).__name__
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError):
            return f"{name}: TLS failed ({cause.reason or 'handshake'})"
        if isinstance(cause, OSError) and cause.strerror:
            return f"{name}: {cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    return f"{name}: {_MEANINGS.get(name, 'the request failed')}"
