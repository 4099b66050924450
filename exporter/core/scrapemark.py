"""The scrape mark: the stream position the last /metrics scrape saw, beside the state file.

After a crash (SIGKILL, OOM kill) the exporter resumes from its last checkpoint, and Requence
replays what came after it. Updates up to the last scrape were counted and collected already:
they are applied to the tracker quietly, so task state is whole but nothing is counted twice.
Updates after the last scrape were counted by a process whose counts nobody collected: they are
counted again, which is what Prometheus needs to see them at all.

The mark is one fixed-width record rewritten in place at most once per scrape: no fsync (a
process crash leaves the page cache intact; a machine crash only costs the mark's benefit). It
is input too: only a regular file is read or written (opened without blocking, never through a
link), and only a position the stream can have. When the stream's positions restart (a server
reset), the mark is cleared before the next checkpoint: it counts in the old numbering.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

from exporter.core.updates import MAX_POSITION

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

    def _open(self, flags: int) -> int:
        """A descriptor of the mark, if it is a regular file: a FIFO or a device planted there
        would block the open or the read, and with them the whole process."""
        fd = os.open(self.path, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{self.path} is not a regular file")
        return fd

    def read(self) -> tuple[str, int] | None:
        """The (since, position) last marked; None when there is none or it is unreadable."""
        try:
            fd = self._open(os.O_RDONLY)
        except OSError:
            return None
        try:
            raw = os.read(fd, _WIDTH + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        since, _, position = raw.decode("ascii", "replace").strip().rpartition(" ")
        if not since or not (position.isascii() and position.isdigit()) or len(position) > 19:
            return None
        if int(position) > MAX_POSITION:
            return None
        return since, int(position)

    def mark(self, since: str, position: int | None) -> None:
        """Record that a scrape saw everything up to `position` of the stream since `since`."""
        if position is None or (since, position) == self._written or self._failed:
            return
        record = f"{since} {position}".encode("ascii", "replace")
        if len(record) > _WIDTH:
            return
        if self._write(record.ljust(_WIDTH) + b"\n"):
            self._written = (since, position)

    def clear(self) -> None:
        """Forget the mark: the stream's positions restarted, so it means nothing now."""
        if self._written is None and not self.path.exists():
            return
        if self._write(b" " * _WIDTH + b"\n"):
            self._written = None

    def _write(self, record: bytes) -> bool:
        if self._failed:
            return False
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = self._open(os.O_WRONLY | os.O_CREAT)
            os.pwrite(self._fd, record, 0)
        except OSError as exc:
            # Without the mark a crash counts again what came after the checkpoint, as before.
            self._failed = True
            log.warning("cannot write scrape mark %s: %s", self.path, exc.strerror or exc)
            return False
        return True

    def close(self) -> None:
        """Close the file (it stays for the next start)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
