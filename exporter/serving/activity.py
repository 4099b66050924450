"""Recent activity for the status page, from counters sampled once a second.

The stream's hot path is untouched: a periodic job reads the update counters the metrics keep
and the stream's status, and this module keeps a minute of those samples to answer "updates per
second", "the last minute's tasks by outcome" and "connected (or not) since when".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from exporter.core.status import StreamStatus
from exporter.core.updates import TASK_ABORTED, TASK_END, TASK_ERROR, TASK_START

__all__ = ["Activity", "Window"]

WINDOW: Final = 60.0  # seconds of samples kept: "the last minute"
RATE_WINDOW: Final = 10.0  # seconds the updates-per-second rate is averaged over
TASK_COUNTS: Final = (
    (TASK_START, "started"),
    (TASK_END, "ended"),
    (TASK_ERROR, "errored"),
    (TASK_ABORTED, "aborted"),
)


class Window(NamedTuple):
    """Tasks by outcome over the last `seconds` (at most a minute, less just after start)."""

    seconds: float
    tasks: dict[str, int]


class Activity:
    """A minute of once-a-second samples of the update counters and the connection."""

    def __init__(
        self,
        counts: Callable[[], Mapping[str, int]],
        status: StreamStatus,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counts = counts
        self._status = status
        self._clock = clock
        self._samples: deque[tuple[float, int, dict[str, int]]] = deque()
        self.connected = status.connected
        self._connections = status.connections
        self.since = clock()  # when the stream last connected or disconnected (or start-up)

    def sample(self) -> None:
        """Take one sample (called about once a second)."""
        now = self._clock()
        status = self._status
        if status.connected != self.connected or status.connections != self._connections:
            self.connected = status.connected
            self._connections = status.connections
            self.since = now
        counts = self._counts()
        tasks = {kind: counts.get(kind, 0) for kind, _ in TASK_COUNTS}
        samples = self._samples
        samples.append((now, sum(counts.values()), tasks))
        while len(samples) > 2 and now - samples[1][0] >= WINDOW:
            samples.popleft()

    def _since(self, seconds: float) -> tuple[float, int, dict[str, int]] | None:
        """The oldest sample within `seconds` of the newest (or the oldest kept)."""
        samples = self._samples
        if len(samples) < 2:
            return None
        newest = samples[-1][0]
        for sample in samples:
            if newest - sample[0] <= seconds + 0.5:
                return sample
        return samples[0]

    def updates_per_second(self) -> float | None:
        """Updates per second over the last ten seconds; None until two samples exist."""
        first = self._since(RATE_WINDOW)
        if first is None:
            return None
        last = self._samples[-1]
        elapsed = last[0] - first[0]
        return (last[1] - first[1]) / elapsed if elapsed > 0 else None

    def last_minute(self) -> Window | None:
        """Tasks started, ended, errored and aborted over the last minute."""
        first = self._since(WINDOW)
        if first is None:
            return None
        last = self._samples[-1]
        tasks = {name: last[2][kind] - first[2][kind] for kind, name in TASK_COUNTS}
        return Window(last[0] - first[0], tasks)
