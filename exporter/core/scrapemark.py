"""The scrape mark: the stream position the last /metrics scrape saw, beside the state file.

After a crash (SIGKILL, OOM kill) the exporter resumes from its last checkpoint, and Requence
replays what came after it. Updates up to the last scrape were counted and collected already:
they are applied to the tracker quietly, so task state is whole but nothing is counted twice.
Updates after the last scrape were counted by a process whose counts nobody collected: they are
counted again, which is what Prometheus needs to see them at all.

The mark is one fixed-width record rewritten in place at most once per scrape: no fsync (a
process crash leaves the page cache intact; a machine crash only costs the mark's benefit).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

__all__ = ["ScrapeMark"]

log = logging.getLogger(__name__)
_WIDTH: Final = 96  # "<since> <position>" padded with spaces, then a newline


class ScrapeMark:
    """Reads and rewrites one scrape mark file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._written: tuple[str, int] | None = None
        self._failed = False

    def read(self) -> tuple[str, int] | None:
        """The (since, position) last marked; None when there is none or it is unreadable."""
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(_WIDTH + 1)
        except OSError:
            return None
        since, _, position = raw.decode("ascii", "replace").strip().rpartition(" ")
        if not since or not (position.isascii() and position.isdigit()) or len(position) > 19:
            return None
        return since, int(position)

    def mark(self, since: str, position: int | None) -> None:
        """Record that a scrape saw everything up to `position` of the stream since `since`."""
        if position is None or (since, position) == self._written or self._failed:
            return
        record = f"{since} {position}".encode("ascii", "replace")
        if len(record) > _WIDTH:
            return
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o600)
            os.pwrite(self._fd, record.ljust(_WIDTH) + b"\n", 0)
        except OSError as exc:
            # Without the mark a crash counts again what came after the checkpoint, as before.
            self._failed = True
            log.warning("cannot write scrape mark %s: %s", self.path, exc.strerror or exc)
            return
        self._written = (since, position)

    def close(self) -> None:
        """Close the file (it stays for the next start)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
