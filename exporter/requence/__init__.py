"""The Requence side: from the access token to updates applied in order.

`token` (access tokens), `credentials` (where they come from, checked), `stream` (the
watch-all connection: resume, backoff), `sse` (framing), `decode` (events to `Update`s) and
`pipeline` (positions, duplicates, skips, shards and lag; it applies each update to the
tracker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "ACCEPT_ENCODING",
    "ALPHABET",
    "PIECE",
    "SEPARATOR",
    "Backoff",
    "Credentials",
    "Inflater",
    "Pipeline",
    "RawEvent",
    "RecentIds",
    "SSEDecoder",
    "Skip",
    "UnsupportedEncoding",
    "WatchStream",
    "credentials_from",
    "decode_token",
    "decode_update",
    "encode_token",
    "inflater_for",
    "parse_position",
    "parse_timestamp",
    "shard_of",
    "url_credentials_problem",
]

if TYPE_CHECKING:
    from exporter.requence.credentials import credentials_from
    from exporter.requence.decode import Skip, decode_update, parse_timestamp
    from exporter.requence.inflate import (
        ACCEPT_ENCODING,
        PIECE,
        Inflater,
        UnsupportedEncoding,
        inflater_for,
    )
    from exporter.requence.pipeline import Pipeline, RecentIds, parse_position, shard_of
    from exporter.requence.sse import RawEvent, SSEDecoder
    from exporter.requence.stream import Backoff, WatchStream
    from exporter.requence.token import (
        ALPHABET,
        SEPARATOR,
        Credentials,
        decode_token,
        encode_token,
        url_credentials_problem,
    )
else:
    # Each name is imported from its module on first use, so importing the package
    # loads only the modules used (the span process, for one, never loads the metrics).
    from exporter.core import lazy_exports

    _MODULES = {
        "ACCEPT_ENCODING": "exporter.requence.inflate",
        "ALPHABET": "exporter.requence.token",
        "Backoff": "exporter.requence.stream",
        "Credentials": "exporter.requence.token",
        "Inflater": "exporter.requence.inflate",
        "PIECE": "exporter.requence.inflate",
        "Pipeline": "exporter.requence.pipeline",
        "RawEvent": "exporter.requence.sse",
        "RecentIds": "exporter.requence.pipeline",
        "SEPARATOR": "exporter.requence.token",
        "SSEDecoder": "exporter.requence.sse",
        "Skip": "exporter.requence.decode",
        "UnsupportedEncoding": "exporter.requence.inflate",
        "WatchStream": "exporter.requence.stream",
        "credentials_from": "exporter.requence.credentials",
        "decode_token": "exporter.requence.token",
        "decode_update": "exporter.requence.decode",
        "encode_token": "exporter.requence.token",
        "inflater_for": "exporter.requence.inflate",
        "parse_position": "exporter.requence.pipeline",
        "parse_timestamp": "exporter.requence.decode",
        "shard_of": "exporter.requence.pipeline",
        "url_credentials_problem": "exporter.requence.token",
    }

    __getattr__ = lazy_exports(globals(), _MODULES)
