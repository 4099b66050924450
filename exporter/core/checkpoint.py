"""The state file: `since`, the last position and every task in flight, saved atomically.

Written as a temporary file, flushed with fsync, renamed over the old one and the directory
synced, so a crash leaves the previous state or the new one, never half of either. The temporary
file has a random name and is created exclusively, never through a symbolic link. Saving runs in
a thread (`save` takes a lock and drops a save older than one already written). An unreadable
or corrupt file, or one with any field of the wrong type, is moved aside with one warning; the
exporter then starts fresh. A lock file beside it (`<file>.lock`, `flock`) keeps a second
exporter from sharing the state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import stat
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

from exporter.core.errors import ConfigError
from exporter.core.snapshot import (
    BadSnapshot,
    RestoredTracker,
    Trims,
    bounded_id,
    check_time,
    parse_snapshot,
)
from exporter.core.statelayout import encode_state, read_state
from exporter.core.updates import MAX_POSITION, timestamp_in_range

__all__ = ["STATE_VERSION", "LoadedState", "SavedState", "StateFile"]

log = logging.getLogger(__name__)
STATE_VERSION: Final = 1


class SavedState(NamedTuple):
    """What a state file holds."""

    since: str
    position: int | None
    recent_ids: list[str]
    tracker: dict[str, Any]
    last_update_timestamp: float | None = None  # server time of the last update read


class LoadedState(NamedTuple):
    """What a state file held, every field checked; the tracker's tasks already built."""

    since: str
    position: int | None
    recent_ids: list[str]
    tracker: RestoredTracker
    last_update_timestamp: float | None


# The since the exporter writes: ISO 8601 UTC with milliseconds (`2026-11-22T10:00:00.000Z`).
_MAX_SINCE_CHARS: Final = 40
_RECENT_IDS: Final = 2048  # as many as the pipeline remembers


def _optional_time(value: object) -> float | None:
    """A saved server time, or None when absent (files written before it was saved)."""
    return None if value is None else check_time(value, "last_update_timestamp")


def _since(value: object) -> str:
    if type(value) is not str or len(value) > _MAX_SINCE_CHARS:
        raise BadSnapshot("since is not a time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadSnapshot("since is not a time") from None
    if moment.tzinfo is None or not timestamp_in_range(moment.timestamp()):
        raise BadSnapshot("since is not a time with an offset from 1970 to 9999")
    return value


def _parse(
    data: object, max_tasks: int, built: list[Any] | None, dropped: int, trims: Trims
) -> LoadedState:
    """Check every field of a decoded state file; raise BadSnapshot naming the first wrong one."""
    if type(data) is not dict:
        raise BadSnapshot("not a JSON object")
    if data.get("version") != STATE_VERSION:
        raise BadSnapshot(f"version {data.get('version')!r:.40}")
    try:
        since, position, recent = data["since"], data["position"], data["recent_ids"]
        tracker = data["tracker"]
    except KeyError as exc:
        raise BadSnapshot(f"no {exc}") from None
    since = _since(since)
    if position is not None and (type(position) is not int or not 0 <= position <= MAX_POSITION):
        raise BadSnapshot("position is not a position")
    if type(recent) is not list:
        raise BadSnapshot("recent_ids is not a list of strings")
    recent = [bounded_id(i, "an update id", "update_id", trims) for i in recent[-_RECENT_IDS:]]
    last_update = _optional_time(data.get("last_update_timestamp"))
    restored = parse_snapshot(tracker, max_tasks, dropped, built=built, trims=trims)
    return LoadedState(since, position, recent, restored, last_update)


class StateFile:
    """Reads and writes one state file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._save_lock = threading.Lock()
        self._saved_seq = -1  # the newest save written

    def lock(self) -> None:
        """Take `<file>.lock` for this process; raise ConfigError when another exporter holds
        it (two exporters on one state file would restore and overwrite each other's tasks).
        A lock file that cannot be made is only warned about: saves then fail and are counted
        as before."""
        if self._lock_fd is not None:
            return
        path = self.path.with_name(f"{self.path.name}.lock")
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o600)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(f"{path} is not a regular file")
        except OSError as exc:
            log.warning(
                "cannot lock %s (%s): a second exporter on this state file would go unnoticed",
                path,
                exc.strerror or exc,
            )
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 20, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise ConfigError(
                f"--state-file (REQUENCE_EXPORTER_STATE_FILE): {self.path} is in use by "
                f"another exporter (process {holder or 'unknown'}, lock {path}); give each "
                "exporter its own state file"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock (the lock file stays)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def load(self, max_tasks: int = 100_000) -> LoadedState | None:
        """The saved state, with at most `max_tasks` tasks (the most recently updated); None
        when there is none, or it was corrupt (and set aside). Slow for a large file: call it
        from a thread."""
        trims = Trims()
        aside: list[Path] = []

        def set_aside_first() -> None:
            aside.append(self._move_aside("old-layout"))
            log.warning(
                "state file %s is not in the layout this version writes: moved to %s before "
                "reading it (delete it once the exporter runs)",
                self.path,
                aside[0],
            )

        try:
            document, built, dropped = read_state(self.path, max_tasks, trims, set_aside_first)
            return _parse(document, max_tasks, built, dropped, trims)
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, BadSnapshot) as exc:
            self._set_aside(str(exc), aside[0] if aside else self.path)
            return None
        except OSError as exc:
            log.warning("cannot read state file %s (%s); starting fresh", self.path, exc.strerror)
            return None

    def _move_aside(self, why: str, source: Path | None = None) -> Path:
        aside = self.path.with_name(f"{self.path.name}.{why}-{int(time.time())}")
        with contextlib.suppress(OSError):
            (source or self.path).replace(aside)
        return aside

    def _set_aside(self, problem: str, source: Path) -> None:
        aside = self._move_aside("corrupt", source)
        where = f"moved to {aside}" if aside.exists() else "left in place"
        log.warning(
            "state file %s is corrupt (%s); %s, starting fresh", self.path, problem[:200], where
        )

    def save(self, state: SavedState, seq: int | None = None) -> None:
        """Write atomically; raise OSError when the disk refuses, or a value cannot be stored
        (the caller counts it, logs and goes on). Safe from a thread: saves run one at a time,
        and one numbered `seq` below a save already written is dropped."""
        with self._save_lock:
            if seq is not None:
                if seq <= self._saved_seq:
                    return
                self._saved_seq = seq
            self._write(state)

    def _write(self, state: SavedState) -> None:
        try:
            body = encode_state(
                {
                    "version": STATE_VERSION,
                    "saved_at": time.time(),
                    "since": state.since,
                    "position": state.position,
                    "recent_ids": state.recent_ids,
                    "last_update_timestamp": state.last_update_timestamp,
                    "tracker": state.tracker,
                }
            )
        except orjson.JSONEncodeError as exc:  # a value JSON cannot hold: nothing was written
            raise OSError(f"state not serialisable: {exc}") from exc
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # A fresh random name, created exclusively and never through a link: a file or link
        # planted at a predictable name cannot redirect the write.
        temp = directory / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
