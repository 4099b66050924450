"""Logging set-up (text or JSON lines) and a rate-limited warning for per-update problems.

A record's structured fields (`extra={"fields": {...}}`) are fields of the JSON object, and in
text follow the message as `key=value` pairs.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "JsonFormatter",
    "RateLimitedWarning",
    "TextFormatter",
    "logfmt",
    "logfmt_value",
    "setup_logging",
]


def logfmt_value(value: object) -> str:
    """One value as logfmt writes it: bare when it can be, else quoted."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if text and all(c.isalnum() or c in "-_.:/@" for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


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

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line, with the fields after the message."""
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
