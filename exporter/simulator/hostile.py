"""Hostile upstream actions for the scripted server: compression, bombs and dribbling."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from exporter.serving.http_exchange import Stream

__all__ = ["Bomb", "Dribble", "Gzip", "GzipStream", "RawHead"]


@dataclass(frozen=True)
class Gzip:
    """Compress this connection's body with gzip and say so (a plan's first action only)."""


@dataclass(frozen=True)
class Bomb:
    """Write `size` bytes of `fill` (blank lines by default), compressed as it goes under Gzip."""

    size: int
    fill: bytes = b"\n"


@dataclass(frozen=True)
class Dribble:
    """Write `data` one byte every `interval` seconds."""

    data: bytes
    interval: float


@dataclass(frozen=True)
class RawHead:
    """Answer with `data` instead of a response (a plan's first action only), one byte every
    `interval` seconds when it is above zero; `{authorization}` in `data` becomes the request's
    Authorization header, as a server that echoes it would send it back. `later` follows after
    `pause` seconds (a separate read), and the connection stays open `hold` seconds more."""

    data: bytes
    interval: float = 0.0
    later: bytes = b""
    pause: float = 0.05
    hold: float = 0.0


class GzipStream:
    """A `Stream` whose writes are gzip-compressed and flushed, so each arrives promptly."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._compress = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data: bytes) -> None:
        self._stream.write(self._compress.compress(data) + self._compress.flush(zlib.Z_SYNC_FLUSH))

    async def drain(self) -> None:
        await self._stream.drain()

    async def wait_disconnected(self) -> None:
        await self._stream.wait_disconnected()

    def abort(self) -> None:
        self._stream.abort()

    async def close(self) -> None:
        self._stream.write(self._compress.flush())
        await self._stream.close()
