"""The simulator's files service: the tagged values payloads carry, and the bytes behind them.

Every reference is stateless: its URL says everything needed to serve it (a key seeding the
content, the size, the type), so any URL the stream ever carried can be fetched for as long as
the simulator runs, with nothing kept in memory. The workload writes URLs under `FILES_ORIGIN`;
the server swaps that origin for its own base URL (`localize`) as it emits each update.

- `RequenceFile` `{url, size, mime}` (+ `name`): `GET /files/file/{key}-{size}.{ext}` answers
  exactly `size` bytes of `mime` (the type's magic bytes, then seeded filler or text lines).
- `RequenceStream` `{url, mime}`: `GET /files/stream/{key}.{ext}`; with the request header
  `x-requence-stream-protocol: framed` the body is the SDK's framed protocol (data frames, then
  the end frame) and the header is echoed, otherwise the raw bytes.
- `ClaimCheck` `{url, size}`: `GET /files/claim-check/{key}-{size}` answers a JSON value of
  exactly `size` bytes (compact, as the SDK's offload writes it) that itself holds a
  `RequenceFile` reference, as an offloaded node output does.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any, Final, NamedTuple

import orjson

__all__ = [
    "CLAIM_CHECK_THRESHOLD",
    "FILES_ORIGIN",
    "FILES_PREFIX",
    "MIME_TYPES",
    "FileResponse",
    "claim_check_ref",
    "file_ref",
    "localize",
    "serve_file",
    "stream_ref",
]

TAG: Final = "__REQUENCE_type"
FILES_ORIGIN: Final = "http://files.requence-simulator.invalid"
FILES_PREFIX: Final = "/files/"
# The simulated workspace's `maxPayloadSize`: a top-level value of a node's output larger than
# this travels as a ClaimCheck (the SDK's own fallback is 4 MiB; the backend mints the real one).
CLAIM_CHECK_THRESHOLD: Final = 1 << 20
_MAX_SERVED: Final = 64 << 20  # refuse sizes no reference of ours carries (and no memory to burn)
STREAM_PROTOCOL_HEADER: Final = "x-requence-stream-protocol"
_FRAME_BYTES: Final = 64 * 1024
_END_FRAME: Final = b"\x01\x00\x00\x00\x00"

MIME_TYPES: Final = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "tiff": "image/tiff",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "mp3": "audio/mpeg",
    "csv": "text/csv",
    "txt": "text/plain",
    "ndjson": "application/x-ndjson",
}
# What a reader sniffing the type finds first; text types get text instead.
_MAGIC: Final = {
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "tiff": b"II*\x00\x08\x00\x00\x00",
    "xlsx": b"PK\x03\x04\x14\x00\x06\x00",
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
}
_EXT: Final = "|".join(MIME_TYPES)
_FILE: Final = re.compile(rf"^/files/file/([0-9a-f]{{16}})-([1-9][0-9]{{0,9}})\.({_EXT})$")
_STREAM: Final = re.compile(rf"^/files/stream/([0-9a-f]{{16}})\.({_EXT})$")
_CLAIM: Final = re.compile(r"^/files/claim-check/([0-9a-f]{16})-([1-9][0-9]{0,9})$")


class FileResponse(NamedTuple):
    """What the files service answers: status, headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _key(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def file_ref(rng: random.Random, ext: str, low: int, high: int, **extra: Any) -> dict[str, Any]:
    """A `RequenceFile` of `low`..`high` bytes (log-uniform: small files are the common ones)."""
    size = round(math.exp(rng.uniform(math.log(low), math.log(high))))
    url = f"{FILES_ORIGIN}/files/file/{_key(rng)}-{size}.{ext}"
    return {TAG: "RequenceFile", "url": url, "size": size, "mime": MIME_TYPES[ext], **extra}


def stream_ref(rng: random.Random, ext: str) -> dict[str, Any]:
    """A `RequenceStream`: a URL and a type, no size (the producer may still be writing)."""
    return {
        TAG: "RequenceStream",
        "url": f"{FILES_ORIGIN}/files/stream/{_key(rng)}.{ext}",
        "mime": MIME_TYPES[ext],
    }


def claim_check_ref(rng: random.Random) -> dict[str, Any]:
    """A `ClaimCheck` for a value over the threshold: mostly just over, now and then 8 times it."""
    factor = min(math.exp(rng.gauss(0.35, 0.45)), 8.0)
    size = max(round(CLAIM_CHECK_THRESHOLD * factor), CLAIM_CHECK_THRESHOLD + 1)
    url = f"{FILES_ORIGIN}/files/claim-check/{_key(rng)}-{size}"
    return {TAG: "ClaimCheck", "url": url, "size": size}


def localize(payload: bytes, base_url: str) -> bytes:
    """Point the references in an encoded update at the simulator serving it."""
    if FILES_ORIGIN.encode() not in payload:
        return payload
    return payload.replace(FILES_ORIGIN.encode(), base_url.encode())


def _text(rng: random.Random, ext: str, size: int) -> bytes:
    if ext == "csv":
        lines = ["sku,qty,amount"]
        lines += [
            f"SKU-{rng.randint(1000, 9999)},{rng.randint(1, 99)},{rng.randint(1, 99999) / 100}"
            for _ in range(80)
        ]
    elif ext == "ndjson":
        lines = [f'{{"seq":{n},"value":{rng.randint(0, 10**6)}}}' for n in range(80)]
    else:
        words = ("invoice", "total", "due", "page", "account", "amount", "date", "net", "tax")
        lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(40)]
    block = ("\n".join(lines) + "\n").encode()
    return (block * (size // len(block) + 1))[:size]


def _content(key: str, ext: str, size: int) -> bytes:
    rng = random.Random(key)
    magic = _MAGIC.get(ext)
    if magic is None:
        return _text(rng, ext, size)
    return (magic + rng.randbytes(max(size - len(magic), 0)))[:size]


def _claim_check_body(key: str, size: int, base_url: str) -> bytes | None:
    """A compact JSON export of exactly `size` bytes: rows, plus a reference to the source file."""
    rng = random.Random(key)
    source = file_ref(rng, "csv", 50_000, 5_000_000, name="export.csv")
    head = b'{"export":"rows","source":%b,"rows":[' % localize(orjson.dumps(source), base_url)
    tail = b'],"note":"'
    # Rows of one fixed width, so the count that fits is plain arithmetic.
    row = b'{"sku":"SKU-%04d","qty":%03d,"amount":"%05d.%02d"}'
    width = len(row % (0, 0, 0, 0)) + 1
    room = size - len(head) - len(tail) - 2
    if room < 0:
        return None
    count = (room + 1) // width
    rows = b",".join(
        row % (rng.randint(1000, 9999), rng.randint(100, 999), rng.randint(0, 99999), n % 100)
        for n in range(count)
    )
    filler = room - len(rows)
    note = (b"offloaded by the simulator " * (filler // 27 + 1))[:filler]
    return head + rows + tail + note + b'"}'


def _framed(body: bytes) -> bytes:
    frames = [
        b"\x00" + len(chunk).to_bytes(4, "big") + chunk
        for chunk in (body[i : i + _FRAME_BYTES] for i in range(0, len(body), _FRAME_BYTES))
    ]
    return b"".join(frames) + _END_FRAME


def serve_file(path: str, headers: dict[str, str], base_url: str) -> FileResponse:
    """Answer a `GET` under `/files/`: the content a reference promised, or 404."""
    if match := _FILE.match(path):
        key, size, ext = match[1], int(match[2]), match[3]
        if size <= _MAX_SERVED:
            return FileResponse(200, [("Content-Type", MIME_TYPES[ext])], _content(key, ext, size))
    elif match := _STREAM.match(path):
        key, ext = match[1], match[2]
        body = _content(key, ext, random.Random(key + ext).randint(4096, 1 << 20))
        response = [("Content-Type", MIME_TYPES[ext])]
        if headers.get(STREAM_PROTOCOL_HEADER) == "framed":
            response.append((STREAM_PROTOCOL_HEADER, "framed"))
            body = _framed(body)
        return FileResponse(200, response, body)
    elif match := _CLAIM.match(path):
        key, size = match[1], int(match[2])
        body_or_none = _claim_check_body(key, size, base_url) if size <= _MAX_SERVED else None
        if body_or_none is not None:
            return FileResponse(200, [("Content-Type", "application/json")], body_or_none)
    return FileResponse(404, [("Content-Type", "application/json")], b'{"error":"no such file"}')
