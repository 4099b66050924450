"""How durations, sizes and counts are written, and the range each setting allows: one
grammar, one set of messages.

A duration is a number with a unit, or several such parts, the largest unit first and each unit
once: Prometheus's grammar (`90s`, `15m`, `1h30m`; units ms, s, m, h, d, w, y).
`promql_duration` takes that form alone, for the values `rules` pastes into PromQL;
`parse_duration`, for settings, also takes a fraction (`1.5h`, `2.5s`) and a lone number in the
setting's own unit (seconds for flags, milliseconds for the `OTEL_*` variables).

Numbers are ASCII digits, at most twelve before the point and nine after: `int()` and `float()`
also take `1_000`, `nan`, `inf`, other scripts' digits and thousands of digits, none of which an
operator means. Spaces around a value are ignored, and none are allowed inside it.

Each parser takes the range it allows (a setting outside it is refused at start: `0` for an
interval would spin a core, `nan` or `1e999` would poison every comparison); a setting's domain
is its parser with its range bound (`functools.partial`). Errors are ValueErrors that quote the
value (cut to 40 characters) and say what is expected; the caller adds where the value came
from: the flag and its variable, the `OTEL_*` variable or the rules key.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Final

__all__ = [
    "MAX_BUCKETS",
    "MAX_PROMQL_SECONDS",
    "duration_text",
    "parse_buckets",
    "parse_duration",
    "parse_number",
    "parse_size",
    "parse_whole",
    "promql_duration",
    "size_text",
]

# Milliseconds in each unit, the largest first: the order the parts of a duration come in.
_UNIT_MS: Final = {
    "y": 31_536_000_000,
    "w": 604_800_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
_ORDER: Final = tuple(_UNIT_MS)
_NUMBER: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII)
_PART: Final = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,9})?)(ms|[ywdhms])", re.ASCII)
# Prometheus's parts: whole numbers of any length (the ten-year bound keeps them small).
_PROMQL_PART: Final = re.compile(r"([0-9]+)(ms|[ywdhms])", re.ASCII)
_WHOLE: Final = re.compile(r"[0-9]{1,15}", re.ASCII)
_SIZE: Final = re.compile(r"([0-9]{1,15})([A-Za-z]*)", re.ASCII)
_SIZES: Final = {
    "": 1,
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}
_LONE: Final = {"s": "seconds", "ms": "milliseconds"}
# Far below what Prometheus's int64 nanoseconds hold (292 years).
MAX_PROMQL_SECONDS: Final = 10 * 31_536_000
MAX_BUCKETS: Final = 64


def _shown(text: str) -> str:
    return f"{text.strip()!r:.40}"


def _milliseconds(text: str, part: re.Pattern[str]) -> Decimal | None:
    """The milliseconds `text` spells as `part`s of a duration, or None if it is not one."""
    total, pos, last = Decimal(0), 0, -1
    while pos < len(text):
        match = part.match(text, pos)
        if match is None:
            return None
        number, unit = match.groups()
        rank = _ORDER.index(unit)
        if rank <= last:
            return None
        total += Decimal(number) * _UNIT_MS[unit]
        last, pos = rank, match.end()
    return total if pos else None


def _out_of_range(text: str, low: str, high: str) -> ValueError:
    return ValueError(f"{_shown(text)} is out of range: give {low} to {high}")


def _duration_range(text: str, low: float, high: float) -> ValueError:
    if math.isinf(high):
        return ValueError(f"{_shown(text)} is out of range: give at least {duration_text(low)}")
    return _out_of_range(text, duration_text(low), duration_text(high))


def parse_duration(
    text: str, *, lone: str | None = "s", low: float = 0.0, high: float = math.inf
) -> float:
    """Seconds in a setting's duration (`500ms`, `90s`, `1.5h`, `1h30m`, `2w`), from `low` to
    `high`; a lone number counts in unit `lone` (`s` or `ms`; None: a unit is required)."""
    stripped = text.strip()
    if lone is not None and _NUMBER.fullmatch(stripped):
        ms: Decimal | None = Decimal(stripped) * _UNIT_MS[lone]
    else:
        ms = _milliseconds(stripped, _PART)
    if ms is None:
        unit = f" (or a number of {_LONE[lone]})" if lone else ""
        raise ValueError(f"{_shown(text)} is not a duration like 30s, 15m or 1h30m{unit}")
    seconds = float(ms / 1000)
    if not low <= seconds <= high:
        raise _duration_range(text, low, high)
    return seconds


def promql_duration(text: str) -> int | float:
    """Seconds in a Prometheus duration (`90s`, `5m`, `1h30m`): whole numbers, nothing around
    them, up to ten years; a value that passes is pasted into PromQL as it is."""
    ms = _milliseconds(text, _PROMQL_PART)
    if ms is None:
        raise ValueError(
            f"{text!r:.40} is not a Prometheus duration like 90s, 5m or 1h30m (whole numbers)"
        )
    if ms > MAX_PROMQL_SECONDS * 1000:
        raise ValueError(f"{text!r:.40} is longer than ten years")
    whole, rest = divmod(int(ms), 1000)
    return whole if not rest else int(ms) / 1000


def duration_text(seconds: float) -> str:
    """A number of seconds as a short duration: 0.05 -> 50ms, 2.5 -> 2.5s, 60 -> 1m, 86400 -> 1d."""
    for unit in ("d", "h", "m"):
        size = _UNIT_MS[unit] // 1000
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1:
        return f"{seconds * 1000:.10g}ms"
    return f"{seconds:.10g}s"


def parse_size(text: str, *, low: int = 0, high: int = 1 << 62) -> int:
    """Bytes in `1048576`, `512KiB`, `16MiB` (or kB, MB, GB), from `low` to `high`."""
    match = _SIZE.fullmatch(text.strip())
    if not match or match.group(2).lower() not in _SIZES:
        raise ValueError(f"{_shown(text)} is not a size like 16MiB")
    size = int(match.group(1)) * _SIZES[match.group(2).lower()]
    if not low <= size <= high:
        raise _out_of_range(text, size_text(low), size_text(high))
    return size


def size_text(size: int) -> str:
    """Bytes in the largest binary unit that holds them whole: 1024 -> 1KiB, 1 << 28 -> 256MiB."""
    for unit in ("GiB", "MiB", "KiB"):
        scale = _SIZES[unit.lower()]
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def parse_whole(text: str, low: int, high: int) -> int:
    """A whole number from `low` to `high`."""
    stripped = text.strip()
    if not _WHOLE.fullmatch(stripped) or not low <= int(stripped) <= high:
        raise ValueError(f"{_shown(text)} is not a whole number from {low:,} to {high:,}")
    return int(stripped)


def parse_number(text: str, low: float = 0.0, high: float = math.inf) -> float:
    """A number with an optional fraction (`0.25`, `3`), from `low` to `high`."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped) or not low <= float(stripped) <= high:
        raise ValueError(f"{_shown(text)} is not a number from {low:g} to {high:,g}")
    return float(stripped)


def parse_buckets(text: str, low: float, high: float) -> tuple[float, ...]:
    """Histogram bucket bounds in seconds (`0.1, 1, 10`): up to `MAX_BUCKETS`, increasing, each
    from `low` to `high`."""
    parts = [p for p in text.split(",") if p.strip()][: MAX_BUCKETS + 1]
    try:
        values = tuple(parse_number(p, low, high) for p in parts)
    except ValueError:
        values = ()
    if not values or len(values) > MAX_BUCKETS or list(values) != sorted(set(values)):
        raise ValueError(
            f"{_shown(text)} is not up to {MAX_BUCKETS} increasing seconds from {low:g} to "
            f"{high:g}, comma-separated"
        )
    return values
