"""What one connection's reads become: events for the handler, with the read timeout watched.

Either reader (llhttp's protocol or httpx's byte iterator) hands each read to `Intake.take` in
its own call. Most reads end there: parsed, delivered, no await. A read that needs more (a
compressed read inflated in bounded pieces, a large read parsed a step at a time, a sink's
backpressure) makes `take` say so, and the reader awaits `settle` before reading on, so the
event loop is free between pieces and a full sink slows the reading, not the process.

`--read-timeout` measures progress, not bytes: the `Watchdog` ends a connection that completes
no event and no comment within it, however many bytes trickle in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from exporter.requence.inflate import Inflater
from exporter.requence.sse import STEP, RawEvent, SSEDecoder

__all__ = ["Intake", "Watchdog", "drain"]

Handler = Callable[[Sequence[RawEvent], float], None]
Backpressure = Callable[[], Awaitable[None] | None]


async def drain(decoder: SSEDecoder, deliver: Callable[[list[RawEvent]], None]) -> None:
    """Parse what waits in the decoder's backlog a step (`STEP` bytes) at a time, handing each
    step's events to `deliver`, with a turn of the event loop between steps: probes, scrapes
    and checkpoints go on while a 16 MiB event of short lines is parsed."""
    while decoder.backlog:
        await asyncio.sleep(0)
        events = decoder.resume(STEP)
        if events:
            deliver(events)


class Watchdog:
    """Ends a connection that completes no event or comment within `period` of the last one.

    The intake sets `last` (the loop's time) after a read that made progress; the timer fires
    once per period, re-arms itself at `last + period`, and only when that moment has passed
    moves the connection's deadline to now, which cancels the read as `asyncio.timeout` does.
    One timer per period rather than a deadline moved on every read: a timer handle allocated
    and one cancelled per read was the largest cost of a one-event read.
    """

    __slots__ = ("_deadline", "_handle", "_loop", "_period", "last", "paused")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deadline: asyncio.Timeout, period: float
    ) -> None:
        self._loop = loop
        self._deadline = deadline
        self._period = period
        self.last = loop.time()
        self.paused = False
        deadline.reschedule(None)  # the head is in: from here on, the watchdog decides
        self._handle = loop.call_at(self.last + period, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if self.paused:
            self._handle = self._loop.call_at(now + self._period, self._check)
        elif (due := self.last + self._period) > now:
            self._handle = self._loop.call_at(due, self._check)
        else:
            self._deadline.reschedule(now)

    def stop(self) -> None:
        """The connection ended: no more checks."""
        self._handle.cancel()


class Intake:
    """One connection's reads turned into events for `handler`, stamped by `clock`."""

    __slots__ = (
        "_backpressure",
        "_clock",
        "_decoder",
        "_handler",
        "_inflater",
        "_loop",
        "_on_first",
        "_progress",
        "_raw",
        "_wait",
        "_watchdog",
        "alive_at",
        "received",
    )

    def __init__(
        self,
        *,
        max_event_bytes: int,
        inflater: Inflater | None,
        watchdog: Watchdog,
        handler: Handler,
        clock: Callable[[], float],
        backpressure: Backpressure | None,
        on_first: Callable[[], None],
    ) -> None:
        self._decoder = SSEDecoder(max_event_bytes)
        self._inflater = inflater
        self._watchdog = watchdog
        self._handler = handler
        self._clock = clock
        self._backpressure = backpressure  # asked after each read: a wait while a sink is full
        self._on_first = on_first  # called once, at the first events
        self._loop = asyncio.get_running_loop()
        self._progress = self._decoder.progress
        self._raw: bytes | None = None  # a compressed read, inflated in `settle`
        self._wait: Awaitable[None] | None = None  # the backpressure `take` was handed
        self.alive_at = time.monotonic()  # liveness: a read arrived recently
        self.received = False

    def take(self, raw: bytes) -> bool:
        """Feed one read; True when `settle` must be awaited before the next read."""
        self.alive_at = time.monotonic()
        if self._inflater is not None:
            self._raw = raw
            return True
        decoder = self._decoder
        events = decoder.feed(raw, STEP)
        if events:
            self._deliver(events)
        if decoder.backlog:
            return True
        if self._backpressure is not None:
            self._wait = self._backpressure()
            if self._wait is not None:
                return True
        self._note_progress()
        return False

    async def settle(self) -> None:
        """What `take` left: inflation and parsing with the event loop free between pieces,
        then the backpressure wait (our own wait, not the server's silence: the watchdog
        pauses)."""
        decoder = self._decoder
        raw, self._raw = self._raw, None
        if raw is not None and self._inflater is not None:
            for piece in self._inflater.pieces(raw):
                events = decoder.feed(piece, STEP)
                if events:
                    self._deliver(events)
                if decoder.backlog:
                    await drain(decoder, self._deliver)
                await asyncio.sleep(0)  # probes and scrapes between pieces
        elif decoder.backlog:
            await drain(decoder, self._deliver)
        wait, self._wait = self._wait, None
        if wait is None and self._backpressure is not None:
            wait = self._backpressure()
        watchdog = self._watchdog
        if wait is not None:
            watchdog.paused = True
            await wait
            watchdog.paused = False
            watchdog.last = self._loop.time()
        self._note_progress()

    def _note_progress(self) -> None:
        """Tell the watchdog when the reads so far completed an event or a comment."""
        progress = self._decoder.progress
        if progress != self._progress:
            self._progress = progress
            self._watchdog.last = self._loop.time()

    def _deliver(self, events: Sequence[RawEvent]) -> None:
        self._handler(events, self._clock())
        if not self.received:
            self.received = True
            self._on_first()
