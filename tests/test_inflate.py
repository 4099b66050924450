"""Bounded inflation of compressed response bodies (`exporter.requence.inflate`)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from exporter.requence.inflate import PIECE, UnsupportedEncoding, inflater_for


def test_a_compressed_read_inflates_in_bounded_pieces() -> None:
    body = gzip.compress(b"\n" * (64 << 20), compresslevel=9)  # about 64 KiB on the wire
    inflater = inflater_for("gzip")
    assert inflater is not None
    sizes = [
        len(piece) for chunk in (body[:30_000], body[30_000:]) for piece in inflater.pieces(chunk)
    ]
    assert max(sizes) <= PIECE
    assert sum(sizes) == 64 << 20


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
def test_deflate_is_read_with_or_without_its_zlib_wrapper(wbits: int) -> None:
    packer = zlib.compressobj(wbits=wbits)
    body = packer.compress(b"event: x\ndata: {}\n\n" * 1000) + packer.flush()
    inflater = inflater_for("deflate")
    assert inflater is not None
    assert b"".join(inflater.pieces(body)) == b"event: x\ndata: {}\n\n" * 1000


def test_identity_is_not_inflated_and_other_encodings_are_refused() -> None:
    assert inflater_for(None) is None
    assert inflater_for("identity") is None
    for encoding in ("br", "zstd", "gzip, br"):
        with pytest.raises(UnsupportedEncoding):
            inflater_for(encoding)
