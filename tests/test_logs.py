"""Rate-limited logging: the first report, then one summary per interval with what was counted."""

from __future__ import annotations

import logging

import pytest

from exporter.core.logs import RateLimitedWarning


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.rate"]


def test_reports_once_per_interval_with_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = _Clock()
    warn = RateLimitedWarning(logging.getLogger("test.rate"), 60.0, clock)
    for n in range(5):
        warn("bad_field", "skipped update %d", n)
    warn("queue full", "dropped %d spans", 7, count=7)
    assert _messages(caplog) == [(logging.WARNING, "skipped update 0")]
    clock.now += 60.0
    warn("bad_field", "skipped update %d", 9)
    assert _messages(caplog)[1] == (
        logging.WARNING,
        "skipped update 9 (also since the last report: bad_field=4, queue full=7)",
    )
    clock.now += 60.0
    warn("bad_field", "skipped update %d", 10)
    assert _messages(caplog)[2] == (logging.WARNING, "skipped update 10")  # nothing in between


def test_logs_at_the_level_it_was_given(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors = RateLimitedWarning(logging.getLogger("test.rate"), 60.0, _Clock(), level=logging.ERROR)
    errors("exit", "span process exited with %s", 1)
    errors("exit", "span process exited with %s", 2)
    assert _messages(caplog) == [(logging.ERROR, "span process exited with 1")]
