"""The state file: `since`, the last position and every task in flight, saved atomically.

Written as a temporary file, flushed with fsync, renamed over the old one and the directory
synced, so a crash leaves the previous state or the new one, never half of either. The temporary
file has a random name and is created exclusively, never through a symbolic link. An unreadable
or corrupt file, or one with any field of the wrong type, is moved aside with one warning; the
exporter then starts fresh.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

from exporter.core.snapshot import BadSnapshot, RestoredTracker, parse_snapshot
from exporter.core.statelayout import encode_state, read_state
from exporter.core.updates import MAX_POSITION

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


def _optional_float(value: object) -> float | None:
    """A saved number, or None when absent (files written before it was saved)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadSnapshot(f"not a number: {value!r:.40}")
    return float(value)


def _parse(data: object, max_tasks: int, dropped: int) -> LoadedState:
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
    if type(since) is not str:
        raise BadSnapshot("since is not a string")
    if position is not None and (type(position) is not int or not 0 <= position <= MAX_POSITION):
        raise BadSnapshot("position is not a position")
    if type(recent) is not list or any(type(i) is not str for i in recent):
        raise BadSnapshot("recent_ids is not a list of strings")
    last_update = _optional_float(data.get("last_update_timestamp"))
    return LoadedState(
        since, position, recent, parse_snapshot(tracker, max_tasks, dropped), last_update
    )


class StateFile:
    """Reads and writes one state file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, max_tasks: int = 100_000) -> LoadedState | None:
        """The saved state, with at most `max_tasks` tasks (the most recently updated); None
        when there is none, or it was corrupt (and set aside). Slow for a large file: call it
        from a thread."""
        try:
            document, dropped = read_state(self.path, max_tasks)
            return _parse(document, max_tasks, dropped)
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, BadSnapshot) as exc:
            self._set_aside(str(exc))
            return None
        except OSError as exc:
            log.warning("cannot read state file %s (%s); starting fresh", self.path, exc.strerror)
            return None

    def _set_aside(self, problem: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            self.path.replace(aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        log.warning(
            "state file %s is corrupt (%s); %s, starting fresh", self.path, problem[:200], where
        )

    def save(self, state: SavedState) -> None:
        """Write atomically; raise OSError when the disk refuses, or a value cannot be stored
        (the caller counts it, logs and goes on)."""
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
