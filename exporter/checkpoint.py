"""The state file: `since`, the last position and every task in flight, saved atomically.

Written as a temporary file, flushed with fsync, renamed over the old one and the directory
synced, so a crash leaves the previous state or the new one, never half of either. An
unreadable or corrupt file is moved aside with one warning; the exporter then starts fresh.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

__all__ = ["STATE_VERSION", "SavedState", "StateFile"]

log = logging.getLogger(__name__)
STATE_VERSION: Final = 1


class SavedState(NamedTuple):
    """What a state file holds."""

    since: str
    position: int | None
    recent_ids: list[str]
    tracker: dict[str, Any]
    last_update_timestamp: float | None = None  # server time of the last update read


def _optional_float(value: object) -> float | None:
    """A saved number, or None when absent (files written before it was saved)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


class StateFile:
    """Reads and writes one state file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SavedState | None:
        """The saved state; None when there is none, or it was corrupt (and set aside)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read state file %s (%s); starting fresh", self.path, exc.strerror)
            return None
        try:
            data = orjson.loads(raw)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            position = data["position"]
            state = SavedState(
                since=str(data["since"]),
                position=None if position is None else int(position),
                recent_ids=[str(i) for i in data["recent_ids"]],
                tracker=dict(data["tracker"]),
                last_update_timestamp=_optional_float(data.get("last_update_timestamp")),
            )
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            try:
                self.path.replace(aside)
                where = f"moved to {aside}"
            except OSError:
                where = "left in place"
            log.warning(
                "state file %s is corrupt (%s); %s, starting fresh",
                self.path,
                str(exc)[:200],
                where,
            )
            return None
        return state

    def save(self, state: SavedState) -> None:
        """Write atomically; raise OSError when the disk refuses (the caller logs and goes on)."""
        body = orjson.dumps(
            {
                "version": STATE_VERSION,
                "saved_at": time.time(),
                "since": state.since,
                "position": state.position,
                "recent_ids": state.recent_ids,
                "tracker": state.tracker,
                "last_update_timestamp": state.last_update_timestamp,
            }
        )
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        temp = directory / f".{self.path.name}.tmp"
        with temp.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(self.path)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
