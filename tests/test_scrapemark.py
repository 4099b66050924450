"""The scrape mark is input too: planted FIFOs, positions past 63 bits, clearing after a reset."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from exporter.core.scrapemark import ScrapeMark
from exporter.core.updates import MAX_POSITION


def _within(seconds: float, work: Callable[[], object]) -> object:
    """Run `work` in a thread; fail (instead of hanging the suite) if it blocks."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return result[0]


def test_a_fifo_planted_as_the_mark_neither_blocks_reading_nor_writing(tmp_path: Path) -> None:
    path = tmp_path / "state.json.scraped"
    os.mkfifo(path)
    mark = ScrapeMark(path)
    assert _within(5, mark.read) is None
    _within(5, lambda: mark.mark("2026-11-22T09:00:00.000Z", 12))  # refused, not blocked
    mark.close()
    assert path.is_fifo()


def test_a_mark_past_the_largest_position_is_no_mark(tmp_path: Path) -> None:
    path = tmp_path / "state.json.scraped"
    since = "2026-11-22T09:00:00.000Z"
    path.write_text(f"{since} {MAX_POSITION + 1}\n")
    assert ScrapeMark(path).read() is None
    path.write_text(f"{since} {MAX_POSITION}\n")
    assert ScrapeMark(path).read() == (since, MAX_POSITION)


def test_a_cleared_mark_reads_as_none_and_a_later_mark_writes_again(tmp_path: Path) -> None:
    path = tmp_path / "state.json.scraped"
    since = "2026-11-22T09:00:00.000Z"
    mark = ScrapeMark(path)
    mark.mark(since, 2000)
    assert ScrapeMark(path).read() == (since, 2000)
    mark.clear()
    assert ScrapeMark(path).read() is None
    mark.mark(since, 2000)  # the same position again, after the clear: written
    assert ScrapeMark(path).read() == (since, 2000)
    mark.close()
    # A mark left by an earlier process is cleared too.
    fresh = ScrapeMark(path)
    fresh.clear()
    fresh.close()
    assert ScrapeMark(path).read() is None
