"""Reading an OTLP back-end's replies: partial success, status message, retry delay.

Straight from the protobuf bytes, like the encoder, without the generated classes.
"""

from __future__ import annotations

from exporter.traces.otlp_wire import WireError

__all__ = ["partial_success", "retry_delay", "status_message"]


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a message: ints for scalars, bytes when delimited."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1 or wire == 5:  # noqa: PLR1714 (mypyc compiles == chains, not sets)
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise WireError("truncated fixed-size field")
            value = int.from_bytes(data[pos : pos + size], "little")
            pos += size
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise WireError("truncated length-delimited field")
            value = data[pos : pos + size]
            pos += size
        else:
            raise WireError(f"unsupported wire type {wire}")
        if number == 0:
            raise WireError("field number 0")
        out.append((number, value))
    return out


def _last(fields: list[tuple[int, int | bytes]], number: int) -> int | bytes | None:
    # Protobuf: the last occurrence of a non-repeated field wins.
    found: int | bytes | None = None
    for n, value in fields:
        if n == number:
            found = value
    return found


def _text(value: int | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _int64(value: int | bytes | None) -> int:
    if not isinstance(value, int):
        return 0
    return value - (1 << 64) if value >= 1 << 63 else value


def partial_success(data: bytes) -> tuple[int, str]:
    """Rejected spans and the error message of an `ExportTraceServiceResponse`."""
    # ExportTraceServiceResponse.partial_success = 1: rejected_spans = 1, error_message = 2.
    partial = _last(_fields(data), 1)
    if not isinstance(partial, bytes):
        return 0, ""
    fields = _fields(partial)
    return max(0, _int64(_last(fields, 1))), _text(_last(fields, 2))


def status_message(data: bytes) -> str:
    """The message of a `google.rpc.Status` (what an OTLP/HTTP error answer carries)."""
    return _text(_last(_fields(data), 2))  # code = 1, message = 2, details = 3


def retry_delay(data: bytes) -> float | None:
    """The delay of a `google.rpc.RetryInfo` in seconds, if it holds one."""
    delay = _last(_fields(data), 1)  # retry_delay = 1: a Duration
    if not isinstance(delay, bytes):
        return None
    fields = _fields(delay)  # seconds = 1, nanos = 2
    seconds = _int64(_last(fields, 1)) + _int64(_last(fields, 2)) / 1e9
    return seconds if seconds >= 0 else None
