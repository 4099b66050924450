"""Secrets and other values bound for HTTP headers, checked where they enter.

A bearer token, an OTLP header or a basic auth user name with a line break, a control or a
non-ASCII character would be refused later by the HTTP stack, whose message quotes the whole
header, token included; checked at start-up instead, the problem is named and the value is not.
"""

from __future__ import annotations

__all__ = ["header_value_problem"]


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
