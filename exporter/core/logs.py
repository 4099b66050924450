"""Logging set-up (text or JSON lines) and a rate-limited warning for per-update problems.

Log messages quote text from the stream (ids, names, skip details), so a text line escapes
every control, line-breaking and bidirectional formatting character in its message (`printable`):
no value can end a line early, forge the next record, recolour a terminal or reorder what is
shown. JSON lines are escaped by the encoder.
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

__all__ = ["JsonFormatter", "RateLimitedWarning", "TextFormatter", "printable", "setup_logging"]

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


class TextFormatter(logging.Formatter):
    """The text line format, with the message made `printable` (tracebacks stay as they are)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Render the line with an escaped message."""
        record.message = printable(record.message)
        return super().formatMessage(record)


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
        # Structured fields a caller passed as `extra={"fields": {...}}` (failure events).
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update((k, v) for k, v in fields.items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger once, writing to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
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
