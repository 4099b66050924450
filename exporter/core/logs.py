"""Logging set-up (text or JSON lines) and a rate-limited warning for per-update problems.

A record's structured fields (`extra={"fields": {...}}`) are fields of the JSON object, and in
text follow the message as `key=value` pairs.

Log messages and fields quote text from the stream (ids, names, skip details), so a text line
escapes every control, line-breaking and bidirectional formatting character in its message and
its fields (`printable`): no value can end a line early, forge the next record, recolour a
terminal or reorder what is shown. JSON lines are escaped by the encoder.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import orjson

__all__ = [
    "JsonFormatter",
    "RateLimitedWarning",
    "TextFormatter",
    "logfmt",
    "logfmt_value",
    "printable",
    "setup_logging",
]

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# marks, embeddings, overrides and isolates (a right-to-left override turns `txt.exe` around).
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control and bidirectional formatting character written as an escape
    (`\\x1b`, `\\u202e`), so it shows as what it is."""
    return _UNPRINTABLE.sub(_escaped, text)


def logfmt_value(value: object) -> str:
    """One value as logfmt writes it: bare when it can be, else quoted, never unprintable."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if text and all(c.isalnum() or c in "-_.:/@" for c in text) and text.isascii():
        return text
    return '"' + printable(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def logfmt(fields: dict[str, Any]) -> str:
    """`key=value` pairs, values quoted where needed."""
    return " ".join(f"{key}={logfmt_value(value)}" for key, value in fields.items())


def _fields(record: logging.LogRecord) -> dict[str, Any] | None:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception, and fields)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as a JSON line."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = _fields(record)
        if fields:
            entry.update((k, v) for k, v in fields.items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    """`time level logger: message`, then the record's fields as `key=value` pairs."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)-7s %(name)s: %(message)s") -> None:
        super().__init__(fmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line, its message made `printable`, with the fields after it (tracebacks stay
        as they are)."""
        record.message = printable(record.message)
        line = super().formatMessage(record)
        fields = _fields(record)
        return f"{line} {logfmt(fields)}" if fields else line


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger once, writing to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO; the stream's own logs say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class RateLimitedWarning:
    """Logs the first occurrence, then at most one summary per `interval` seconds, with counts."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        level: int = logging.WARNING,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._level = level
        self._next = 0.0
        self._suppressed: Counter[str] = Counter()

    def __call__(self, kind: str, message: str, *args: object, count: int = 1) -> None:
        """Report `count` problems of `kind` (one by default); most calls only count them."""
        now = self._clock()
        if now < self._next:
            self._suppressed[kind] += count
            return
        self._next = now + self._interval
        if self._suppressed:
            summary = ", ".join(f"{k}={n}" for k, n in sorted(self._suppressed.items()))
            self._suppressed.clear()
            self._logger.log(
                self._level, "%s (also since the last report: %s)", message % args, summary
            )
        else:
            self._logger.log(self._level, message, *args)
