"""The domain of each numeric setting, checked where it enters (a flag or its variable).

A setting outside its domain is refused at start with exit 2 and a message naming the flag and
the environment variable: `--checkpoint-interval 0` would spin a core, `--read-timeout 0` never
connect, `nan` or `1e999` would poison every comparison. Numbers are ASCII digits (with a
fraction for durations): `int()` and `float()` also take `1_000`, `nan`, `inf`, other scripts'
digits and thousands of digits, none of which an operator means.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from exporter.core.errors import ConfigError
from exporter.core.options import env_name
from exporter.core.updates import MAX_FUTURE_SECONDS, parse_timestamp, timestamp_in_range

__all__ = [
    "Buckets",
    "Duration",
    "Size",
    "Whole",
    "parse_duration",
    "parse_listen",
    "parse_shard",
    "parse_since",
    "parse_size",
    "parse_trace_url_template",
]

_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
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
# At most 12 digits before the point: beyond what any bound below admits, and cheap to convert.
_DURATION: Final = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h|d)?\s*")
_SIZE: Final = re.compile(r"\s*([0-9]{1,15})\s*([A-Za-z]*)\s*")
_WHOLE: Final = re.compile(r"\s*([0-9]{1,15})\s*")
_NUMBER: Final = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*")
MAX_BUCKETS: Final = 64
_DAY: Final = 86400.0
_MAX_URL_CHARS: Final = 2048


def _where(flag: str) -> str:
    return f"{flag} ({env_name(flag)})"


def _human(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds * 1000:g}ms"


def parse_duration(text: str, flag: str) -> float:
    """`90`, `500ms`, `15s`, `5m`, `2h`, `1d` to seconds (no bounds: see `Duration`)."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ConfigError(f"{_where(flag)}: {text!r:.40} is not a duration like 30s, 15m or 24h")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_size(text: str, flag: str) -> int:
    """`1048576`, `512KiB`, `16MiB` to bytes (no bounds: see `Size`)."""
    match = _SIZE.fullmatch(text)
    if not match or match.group(2).lower() not in _SIZES:
        raise ConfigError(f"{_where(flag)}: {text!r:.40} is not a size like 16MiB")
    return int(match.group(1)) * _SIZES[match.group(2).lower()]


def _out_of_range(flag: str, text: str, low: str, high: str) -> ConfigError:
    return ConfigError(
        f"{_where(flag)}: {text.strip()!r:.40} is out of range: give {low} to {high}"
    )


class Duration(NamedTuple):
    """Seconds from `low` to `high`, written with a unit."""

    low: float
    high: float

    def parse(self, text: str, flag: str) -> float:
        """`text` in seconds; raise ConfigError naming the flag and its variable."""
        seconds = parse_duration(text, flag)
        if not self.low <= seconds <= self.high:
            raise _out_of_range(flag, text, _human(self.low), _human(self.high))
        return seconds


class Size(NamedTuple):
    """Bytes from `low` to `high`, written with a unit or without."""

    low: int
    high: int

    def parse(self, text: str, flag: str) -> int:
        """`text` in bytes; raise ConfigError naming the flag and its variable."""
        size = parse_size(text, flag)
        if not self.low <= size <= self.high:
            raise _out_of_range(flag, text, f"{self.low >> 10}KiB", f"{self.high >> 20}MiB")
        return size


class Whole(NamedTuple):
    """A whole number from `low` to `high`, in ASCII digits."""

    low: int
    high: int

    def parse(self, text: str, flag: str) -> int:
        """`text` as a number; raise ConfigError naming the flag and its variable."""
        match = _WHOLE.fullmatch(text)
        if not match or not self.low <= int(match.group(1)) <= self.high:
            raise ConfigError(
                f"{_where(flag)}: {text.strip()!r:.40} is not a whole number from {self.low} "
                f"to {self.high:,}"
            )
        return int(match.group(1))


class Buckets(NamedTuple):
    """Histogram bucket bounds in seconds: increasing, each from `low` to `high`."""

    low: float
    high: float

    def parse(self, text: str, flag: str) -> tuple[float, ...]:
        """`text` (comma-separated seconds) as bounds; raise ConfigError naming the flag."""
        parts = [p for p in text.split(",") if p.strip()]
        matches = [_NUMBER.fullmatch(p) for p in parts[: MAX_BUCKETS + 1]]
        values = tuple(float(m.group(1)) for m in matches if m)
        if (
            not values
            or len(values) != len(parts)
            or len(values) > MAX_BUCKETS
            or list(values) != sorted(set(values))
            or not (self.low <= values[0] and values[-1] <= self.high)
        ):
            raise ConfigError(
                f"{_where(flag)}: give up to {MAX_BUCKETS} increasing seconds from "
                f"{self.low:g} to {self.high:g}, comma-separated"
            )
        return values


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) to a host and a port."""
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise ConfigError(f"{flag} ({env_name(flag)}): {text!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a server's default


_LOOK_BACK: Final = Duration(0.0, 3650 * _DAY)


def parse_since(text: str | None, now: datetime) -> str:
    """An ISO 8601 time or a look-back (`15m`) to the ISO 8601 `since` the protocol wants: from
    1970 to at most an hour ahead of `now`."""
    if not text:
        moment = now
    elif re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*", text):
        moment = now - timedelta(seconds=_LOOK_BACK.parse(text, "--since"))
    else:
        seconds = parse_timestamp(text)
        if seconds is None or seconds > now.timestamp() + MAX_FUTURE_SECONDS:
            raise ConfigError(
                "--since (REQUENCE_EXPORTER_SINCE): give an ISO 8601 time from 1970 to now, "
                "such as 2026-11-22T10:00:00Z, or a look-back such as 15m"
            )
        moment = datetime.fromtimestamp(seconds, UTC)
    if not timestamp_in_range(moment.timestamp()):
        raise ConfigError("--since (REQUENCE_EXPORTER_SINCE): reaches back before 1970")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`i/n` (or `<pod name>-i/n`) to this replica's shard, or None."""
    if not text:
        return None
    # i may be a StatefulSet pod's name, which ends in its ordinal (exporter-2/3): the Helm
    # chart passes $(POD_NAME), which works on every Kubernetes version.
    match = re.fullmatch(r"\s*(?:[a-z0-9.-]*-)?([0-9]{1,4})\s*/\s*([0-9]{1,4})\s*", text)
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise ConfigError(
            "--shard (REQUENCE_EXPORTER_SHARD): give i/n with 0 <= i < n, e.g. 0/3"
            " (or <pod name>-i/n)"
        )
    return int(match.group(1)), int(match.group(2))


def parse_trace_url_template(text: str | None) -> str | None:
    """An http(s) URL holding `{trace_id}`, or None."""
    if not text:
        return None
    flag = "--trace-url-template"
    if (
        "{trace_id}" not in text
        or not text.startswith(("http://", "https://"))
        or len(text) > _MAX_URL_CHARS
        or not (text.isascii() and text.isprintable())
        or " " in text
    ):
        raise ConfigError(
            f"{flag} ({env_name(flag)}): give an http(s):// URL holding {{trace_id}} (ASCII, "
            f"no spaces, up to {_MAX_URL_CHARS} characters), e.g. http://jaeger:16686/trace/"
            "{trace_id}"
        )
    return text
