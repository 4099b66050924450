"""Bounded decompression of a response body: a small read never becomes a huge one.

httpx decompresses a `Content-Encoding: gzip` body a whole network read at a time, so 64 KiB of
compressed newlines become 64 MiB in one piece. Here each read is inflated in pieces of at most
`piece` bytes, which the caller decodes one at a time, yielding to the event loop in between.
Only gzip and deflate are asked for and accepted; any other encoding is refused.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

__all__ = ["ACCEPT_ENCODING", "PIECE", "Inflater", "UnsupportedEncoding", "inflater_for"]

ACCEPT_ENCODING: Final = "gzip, deflate"
PIECE: Final = 65536  # the most bytes one compressed read may expand to at a time


class UnsupportedEncoding(ValueError):
    """A content encoding the exporter did not ask for."""


class Inflater:
    """Inflates one response body, in pieces of at most `piece` bytes."""

    def __init__(self, encoding: str, piece: int = PIECE) -> None:
        self._encoding = encoding
        self._piece = piece
        # gzip carries its own header; "deflate" is meant to be zlib-wrapped, but some servers
        # send raw deflate: try the wrapper first and fall back, as browsers do.
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits)
        self._first = encoding == "deflate"

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The inflated bytes of one compressed read, in bounded pieces; raise zlib.error on
        a corrupt body."""
        inflate = self._inflate
        try:
            out = inflate.decompress(data, self._piece)
        except zlib.error:
            if not self._first:
                raise
            self._inflate = inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            out = inflate.decompress(data, self._piece)
        self._first = False
        while out:
            yield out
            out = inflate.decompress(inflate.unconsumed_tail, self._piece)


def inflater_for(content_encoding: str | None) -> Inflater | None:
    """An Inflater for the response's encoding; None when it is not compressed."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity" or not encoding:
        return None
    if encoding not in ("gzip", "x-gzip", "deflate"):
        # Not quoted: a hostile server could echo a request header (the token) into it.
        raise UnsupportedEncoding("a Content-Encoding that was not asked for")
    return Inflater(encoding)
