"""Failure events in the log (`--log-failures`): one structured line per failure, capped.

Each line carries the failure's fields plus `trace_id` and `span_id`, the names Loki and Grafana
use to link a log line to its trace. With `--log-format json` they are fields of the JSON object;
with text they follow the message as `key=value` pairs. At most `per_second` lines are written
in any one second; the rest are counted and reported in one line once the second is over, so a
failure storm cannot flood the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from exporter.core.logs import logfmt, logfmt_value
from exporter.serving.failures import Failure

__all__ = ["DEFAULT_PER_SECOND", "FAILURE_LOGGER", "FailureLog", "failure_fields", "logfmt"]

FAILURE_LOGGER: Final = "exporter.serving.failures"
DEFAULT_PER_SECOND: Final = 20


def failure_fields(failure: Failure) -> dict[str, Any]:
    """The fields of one failure's log line."""
    fields = failure.as_dict()
    # The log record has a time of its own; the failure's is the server's.
    return {"server_time": fields.pop("time"), **fields, "span_id": failure.span_id}


class FailureLog:
    """A failure listener that logs each failure, at most `per_second` lines a second."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        per_second: int = DEFAULT_PER_SECOND,
        json_fields: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger or logging.getLogger(FAILURE_LOGGER)
        self.per_second = per_second
        # JSON lines take the fields from the record (see `exporter.core.logs.JsonFormatter`);
        # text lines carry them in the message.
        self._json = json_fields
        self._clock = clock
        self._window = float("-inf")  # start of the current one-second window
        self._written = 0  # lines written in it
        self.suppressed = 0  # lines suppressed in it
        self.suppressed_total = 0

    def __call__(self, failure: Failure) -> None:
        """Log one failure, or count it when this second's lines are used up."""
        now = self._clock()
        if now - self._window >= 1.0:
            self._report_suppressed()
            self._window = now
            self._written = 0
        if self._written >= self.per_second:
            self.suppressed += 1
            self.suppressed_total += 1
            return
        self._written += 1
        fields = failure_fields(failure)
        summary = f"{failure.kind} task_name={logfmt_value(failure.task_name)}"
        if failure.node is not None:
            summary += f" node={logfmt_value(failure.node)}"
        if self._json:
            self._logger.warning("%s", summary, extra={"fields": fields})
        else:
            self._logger.warning("failure %s", logfmt(fields))

    def tick(self) -> None:
        """Report lines suppressed in a second that is over (called periodically)."""
        if self.suppressed and self._clock() - self._window >= 1.0:
            self._report_suppressed()
            self._written = 0

    def _report_suppressed(self) -> None:
        count = self.suppressed
        if not count:
            return
        self.suppressed = 0
        message = f"{count} failure log lines suppressed (more than {self.per_second} a second)"
        if self._json:
            self._logger.warning("%s", message, extra={"fields": {"suppressed": count}})
        else:
            self._logger.warning("%s suppressed=%d", message, count)
