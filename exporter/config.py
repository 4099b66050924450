"""Settings: flags and `REQUENCE_EXPORTER_*` variables resolved once into a frozen dataclass.

Every option has a domain (a range for each number and duration, written as
`exporter.core.units` has it; a choice; a shape) checked here, where it enters. Every error
names the flag and the environment variable to fix, and never quotes a secret.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, NamedTuple

from exporter.core.errors import ConfigError
from exporter.core.options import bind_environment, env_name
from exporter.core.units import parse_buckets, parse_duration, parse_size, parse_whole
from exporter.core.updates import MAX_FUTURE_SECONDS, parse_timestamp, timestamp_in_range
from exporter.metrics.families import DEFAULT_NODE_BUCKETS, DEFAULT_TASK_BUCKETS
from exporter.requence.credentials import credentials_from
from exporter.requence.token import Credentials
from exporter.serving.http_request import Limits
from exporter.traces.otlp_config import TracingSettings, otlp_metrics_enabled

__all__ = [
    "DEFAULT_PORT",
    "OPTIONS",
    "Option",
    "Settings",
    "add_options",
    "env_name",
    "parse_listen",
    "parse_since",
    "resolve",
]

DEFAULT_PORT: Final = 9721
_DAY: Final = 86400.0
_MAX_URL_CHARS: Final = 2048
_LOOK_BACK: Final = 3650 * _DAY


class Option(NamedTuple):
    """One `run` flag: its name, metavar (None for a switch), help, default (as text), and the
    domain of a numeric one: its parser, raising ValueError (the others are checked by their
    own parsers in `resolve`)."""

    flag: str
    metavar: str | None
    help: str
    default: str | None = None
    domain: Callable[[str], Any] | None = None


OPTIONS: Final = (
    Option(
        "--access-token",
        "TOKEN",
        "Requence access token (else REQUENCE_TASK_ACCESS_TOKEN, then REQUENCE_ACCESS_TOKEN). "
        "Visible to anyone who can list processes (ps): prefer --access-token-file or a "
        "variable.",
    ),
    Option("--access-token-file", "FILE", "File holding the access token."),
    Option(
        "--api-url", "URL", "Requence API base URL, used with --bearer-token instead of a token."
    ),
    Option(
        "--bearer-token",
        "TOKEN",
        "Bearer token, used with --api-url. Visible in ps: prefer --bearer-token-file.",
    ),
    Option("--bearer-token-file", "FILE", "File holding the bearer token, used with --api-url."),
    Option(
        "--since",
        "TIME",
        "Watch updates after this ISO 8601 time or look-back (15m, 2h); without it, from the "
        "state file's position, else from the start-up time.",
    ),
    Option("--listen", "HOST:PORT", "Address of the HTTP server.", f"0.0.0.0:{DEFAULT_PORT}"),
    Option("--log-level", "LEVEL", "Log level: debug, info, warning or error.", "info"),
    Option("--log-format", "FORMAT", "Log format: text, or json for one object a line.", "text"),
    Option(
        "--task-ttl",
        "DURATION",
        "Forget a task not updated for this long.",
        "24h",
        partial(parse_duration, low=1.0, high=365 * _DAY),
    ),
    Option(
        "--max-tracked-tasks",
        "N",
        "Most tasks held in memory; the least recently updated leave first.",
        "100000",
        partial(parse_whole, low=1, high=10_000_000),
    ),
    Option(
        "--max-label-values",
        "N",
        "Most distinct values per label; more become __other__.",
        "1000",
        partial(parse_whole, low=1, high=1_000_000),
    ),
    Option(
        "--task-buckets",
        "SECONDS,...",
        "Task duration histogram buckets, in seconds.",
        ", ".join(f"{b:g}" for b in DEFAULT_TASK_BUCKETS),
        partial(parse_buckets, low=0.0001, high=365 * _DAY),
    ),
    Option(
        "--node-buckets",
        "SECONDS,...",
        "Node duration histogram buckets, in seconds.",
        ", ".join(f"{b:g}" for b in DEFAULT_NODE_BUCKETS),
        partial(parse_buckets, low=0.0001, high=365 * _DAY),
    ),
    Option(
        "--read-timeout",
        "DURATION",
        "Reconnect when no event or comment completes within this.",
        "60s",
        partial(parse_duration, low=1.0, high=_DAY),
    ),
    Option(
        "--stream-reader",
        "READER",
        "The reader: llhttp (fastest), httpx (honours proxy variables), auto (httpx if one is set)",
        "auto",
    ),
    Option(
        "--gather-reads",
        "DURATION",
        "After a read that emptied the socket, wait this long: a quiet stream's updates arrive "
        "several a read, less CPU each, at most this much later (llhttp). 0 reads at once.",
        "100ms",
        partial(parse_duration, low=0.0, high=1.0),
    ),
    Option(
        "--max-event-bytes",
        "SIZE",
        "Skip (and count) events larger than this.",
        "16MiB",
        partial(parse_size, low=1024, high=256 * 1024 * 1024),
    ),
    Option(
        "--state-file", "FILE", "Save position and tasks in flight here; resume from it on start."
    ),
    Option(
        "--checkpoint-interval",
        "DURATION",
        "How often to write the state file.",
        "5s",
        partial(parse_duration, low=1.0, high=_DAY),
    ),
    Option("--traces", None, "Export spans even without OTEL_EXPORTER_OTLP_*ENDPOINT set."),
    Option("--otlp-metrics", None, "Also push the metrics over OTLP."),
    Option(
        "--shard",
        "I/N",
        "Process only this replica's share of root tasks (replicas 0 to N-1); I may be a pod "
        "name ending in -I.",
    ),
    Option(
        "--web.config.file",
        "FILE",
        "Exporter-toolkit web config (TLS, basic auth) for the HTTP server.",
    ),
    Option(
        "--recent-failures",
        "N",
        "Most recent failures kept for / and /failures.",
        "200",
        partial(parse_whole, low=1, high=100_000),
    ),
    Option(
        "--web.max-connections",
        "N",
        "Most HTTP connections open at once.",
        "512",
        partial(parse_whole, low=1, high=1_000_000),
    ),
    Option(
        "--web.max-connections-per-client",
        "N",
        "Most HTTP connections per client address.",
        "32",
        partial(parse_whole, low=1, high=1_000_000),
    ),
    Option(
        "--trace-url-template",
        "URL",
        "Link each failure on the status page to its trace: an http(s) URL with {trace_id}.",
    ),
    Option("--log-failures", None, "Log one structured line per failure."),
    Option(
        "--log-failures-per-second",
        "N",
        "Most failure lines logged a second; the rest are counted as suppressed.",
        "20",
        partial(parse_whole, low=1, high=100_000),
    ),
)
_OPTIONS_BY_FLAG: Final = {opt.flag: opt for opt in OPTIONS}


def _dest(flag: str) -> str:
    return re.sub(r"[-.]", "_", flag.lstrip("-"))


def add_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Add every `run` flag, defaulting to its environment variable, then to its default."""
    for opt in OPTIONS:
        if opt.metavar is None:
            parser.add_argument(opt.flag, dest=_dest(opt.flag), action="store_true", help=opt.help)
        else:
            parser.add_argument(
                opt.flag,
                dest=_dest(opt.flag),
                metavar=opt.metavar,
                default=opt.default,
                help=opt.help,
            )
    bind_environment(parser, env)


def _named(flag: str) -> str:
    """A flag as messages name it: with its variable."""
    return f"{flag} ({env_name(flag)})"


def _in_domain(args: argparse.Namespace, flag: str) -> Any:
    """The value of a numeric option, checked against its domain."""
    domain = _OPTIONS_BY_FLAG[flag].domain
    assert domain is not None, flag
    try:
        return domain(str(getattr(args, _dest(flag))))
    except ValueError as exc:
        raise ConfigError(f"{_named(flag)}: {exc}") from None


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) to a host and a port."""
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise ConfigError(f"{_named(flag)}: {text!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a server's default


def parse_since(text: str, now: datetime) -> str:
    """An ISO 8601 time or a look-back (`15m`, up to 3650 days) to the ISO 8601 `since` the
    protocol wants: from 1970 to at most an hour ahead of `now`."""
    try:
        back: float | None = parse_duration(text, lone=None)
    except ValueError:
        back = None
    if back is not None and back > _LOOK_BACK:
        raise ConfigError("--since (REQUENCE_EXPORTER_SINCE): give a look-back of up to 3650d")
    seconds = now.timestamp() - back if back is not None else parse_timestamp(text)
    if seconds is None or seconds > now.timestamp() + MAX_FUTURE_SECONDS:
        raise ConfigError(
            "--since (REQUENCE_EXPORTER_SINCE): give an ISO 8601 time from 1970 to now, "
            "such as 2026-11-22T10:00:00Z, or a look-back such as 15m"
        )
    if not timestamp_in_range(seconds):
        raise ConfigError("--since (REQUENCE_EXPORTER_SINCE): reaches back before 1970")
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
            f"{_named(flag)}: give an http(s):// URL holding {{trace_id}} (ASCII, "
            f"no spaces, up to {_MAX_URL_CHARS} characters), e.g. http://jaeger:16686/trace/"
            "{trace_id}"
        )
    return text


@dataclass(frozen=True)
class Settings:
    """Everything `run` needs, validated."""

    credentials: Credentials
    since: str | None  # None: the state file's, else the start-up time
    listen: tuple[str, int]
    log_level: str
    log_format: str
    task_ttl: float
    max_tracked_tasks: int
    max_label_values: int
    task_buckets: tuple[float, ...]
    node_buckets: tuple[float, ...]
    read_timeout: float
    max_event_bytes: int
    stream_reader: str  # auto, llhttp or httpx
    gather_reads: float  # seconds a quiet stream's updates gather between reads
    state_file: Path | None
    checkpoint_interval: float
    tracing: TracingSettings
    otlp_metrics: bool
    shard: tuple[int, int] | None
    web_config_file: Path | None
    recent_failures: int = 200
    trace_url_template: str | None = None
    log_failures: bool = False
    log_failures_per_second: int = 20
    server_limits: Limits = field(default_factory=Limits)


def resolve(
    args: argparse.Namespace, env: Mapping[str, str] | None = None, now: datetime | None = None
) -> Settings:
    """Validate parsed flags into Settings; raise ConfigError naming the flag to fix."""
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    level = str(args.log_level).lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"{_named('--log-level')}: debug, info, warning or error")
    if args.log_format not in {"text", "json"}:
        raise ConfigError(f"{_named('--log-format')}: text or json")
    if args.stream_reader not in {"auto", "llhttp", "httpx"}:
        raise ConfigError(f"{_named('--stream-reader')}: auto, llhttp or httpx")
    read_timeout: float = _in_domain(args, "--read-timeout")
    gather_reads: float = _in_domain(args, "--gather-reads")
    if gather_reads * 2 > read_timeout:  # reading paused that long would look like silence
        raise ConfigError(f"{_named('--gather-reads')}: at most half of {_named('--read-timeout')}")
    state_file = Path(args.state_file) if args.state_file else None
    if state_file is not None and state_file.is_dir():
        raise ConfigError(
            f"{_named('--state-file')}: {args.state_file!r:.80} is a directory: name a file in it"
        )
    return Settings(
        credentials=credentials_from(args, env),
        since=parse_since(args.since, now) if args.since else None,
        listen=parse_listen(args.listen),
        log_level=level,
        log_format=args.log_format,
        task_ttl=_in_domain(args, "--task-ttl"),
        max_tracked_tasks=_in_domain(args, "--max-tracked-tasks"),
        max_label_values=_in_domain(args, "--max-label-values"),
        task_buckets=_in_domain(args, "--task-buckets"),
        node_buckets=_in_domain(args, "--node-buckets"),
        read_timeout=read_timeout,
        max_event_bytes=_in_domain(args, "--max-event-bytes"),
        stream_reader=args.stream_reader,
        gather_reads=gather_reads,
        state_file=state_file,
        checkpoint_interval=_in_domain(args, "--checkpoint-interval"),
        tracing=TracingSettings.from_env(env, force=bool(args.traces)),
        otlp_metrics=otlp_metrics_enabled(env, force=bool(args.otlp_metrics)),
        shard=parse_shard(args.shard),
        web_config_file=Path(args.web_config_file) if args.web_config_file else None,
        recent_failures=_in_domain(args, "--recent-failures"),
        trace_url_template=parse_trace_url_template(args.trace_url_template),
        log_failures=bool(args.log_failures),
        log_failures_per_second=_in_domain(args, "--log-failures-per-second"),
        server_limits=Limits(
            max_connections=_in_domain(args, "--web.max-connections"),
            max_connections_per_client=_in_domain(args, "--web.max-connections-per-client"),
        ),
    )


def settings_for(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """Parse `run` flags from argv (for tests and embedding)."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser()
    add_options(parser, env)
    return resolve(parser.parse_args(list(argv)), env)
