"""Waiting, on the event loop, for room in a queue that other threads drain.

The coroutine waits on an `asyncio.Event` that any thread may set through the loop (`wake`), so
the event loop is never blocked the way a `threading.Condition` would block it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["RoomWaiter"]


class RoomWaiter:
    """One coroutine at a time waits; any thread may `wake()` it to look again."""

    def __init__(self) -> None:
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def wait(self, look: Callable[[], float | None]) -> None:
        """Wait until `look()` answers None (room, or no point waiting); until then it answers
        the seconds still worth waiting, and a wake-up or their end makes it look again."""
        loop = asyncio.get_running_loop()
        while True:
            event = asyncio.Event()
            # Registered before looking: a wake-up between the look and the wait is not lost.
            self._waiter = (loop, event)
            try:
                remaining = look()
                if remaining is None or remaining <= 0:
                    return
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass  # look again: the budget may have been renewed meanwhile
            finally:
                self._waiter = None

    def wake(self) -> None:
        """Make the waiting coroutine, if any, look again; safe from any thread."""
        waiter = self._waiter
        if waiter is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                waiter[0].call_soon_threadsafe(waiter[1].set)
