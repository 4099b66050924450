"""Run asyncio servers (the scripted watch-all server, the simulator) on a background loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, Self, TypeVar

T = TypeVar("T")


class _Server(Protocol):
    async def start(self, host: str = ..., port: int = ...) -> tuple[str, int]: ...
    async def aclose(self) -> None: ...


class LoopThread:
    """An event loop in a daemon thread; run coroutines on it from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Build and run an awaitable on the loop (for objects that need a running loop)."""

        async def go() -> T:
            return await make()

        return self.run(go(), timeout)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def serve(loop: LoopThread, make: Callable[[], _Server]) -> _Server:
    """Create a server on the loop (its constructor may need the loop) and start it."""

    async def start() -> _Server:
        server = make()
        await server.start("127.0.0.1", 0)
        return server

    return loop.run(start())
