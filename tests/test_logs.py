"""Rate-limited logging: the first report, then one summary per interval with what was counted."""

from __future__ import annotations

import io
import logging

import pytest

from exporter.core.logs import RateLimitedWarning, TextFormatter, printable


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


FORGED = "t-1\n2026-12-06 00:00:00,000 ERROR   exporter.app: forged\x1b[2J\u202etxt.exe\x85\u2028"


def test_text_lines_show_control_and_bidi_characters_escaped() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.forged")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("skipped update at position %s: %s (%s)", 3, "unknown_type", FORGED)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("task %s failed", FORGED)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    first, second = text.splitlines()[:2]
    assert first.startswith("WARNING test.forged: skipped update at position 3")
    assert "\\x0a2026-12-06 00:00:00,000 ERROR" in first  # one line, the break shown
    assert "\\x1b[2J\\u202etxt.exe\\x85\\u2028" in first
    assert second.startswith("ERROR test.forged: task t-1\\x0a")
    assert "Traceback (most recent call last):" in text  # tracebacks keep their lines
    assert not any(c in text for c in "\x1b\u202e\x85\u2028")


def test_printable_leaves_ordinary_text_alone() -> None:
    assert printable('invoice — 請求書 ✓ "quoted" \\ tab-free') == (
        'invoice — 請求書 ✓ "quoted" \\ tab-free'
    )
    assert printable("a\tb\u200fc") == "a\\x09b\\u200fc"


def test_text_lines_escape_the_structured_fields_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.forged.fields")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("failure", extra={"fields": {"task_name": FORGED, "node": "plain-node"}})
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("\n") == 1  # the forged line break stays inside its field
    assert "node=plain-node" in text
    assert "\\x1b[2J\\u202etxt.exe\\x85\\u2028" in text
    assert not any(c in text for c in "\x1b\u202e\x85\u2028")
