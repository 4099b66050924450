"""Settings: flags and `REQUENCE_EXPORTER_*` variables resolved once into a frozen dataclass.

Every error names the flag and the environment variable to fix, and never quotes a secret.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, NamedTuple

from exporter.core import ConfigError, bind_environment, env_name
from exporter.metrics import DEFAULT_NODE_BUCKETS, DEFAULT_TASK_BUCKETS, otlp_metrics_enabled
from exporter.requence import Credentials, credentials_from, parse_timestamp
from exporter.serving import Limits
from exporter.traces import TracingSettings, parse_positive_int

__all__ = [
    "DEFAULT_PORT",
    "OPTIONS",
    "Option",
    "Settings",
    "add_options",
    "env_name",
    "parse_duration",
    "parse_size",
    "resolve",
]

DEFAULT_PORT: Final = 9721
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


class Option(NamedTuple):
    """One `run` flag: its name, metavar, help, default (as text) and whether it is a switch."""

    flag: str
    metavar: str | None
    help: str
    default: str | None = None


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
    Option("--task-ttl", "DURATION", "Forget a task not updated for this long.", "24h"),
    Option(
        "--max-tracked-tasks",
        "N",
        "Most tasks held in memory; the least recently updated leave first.",
        "100000",
    ),
    Option(
        "--max-label-values", "N", "Most distinct values per label; more become __other__.", "1000"
    ),
    Option(
        "--task-buckets",
        "SECONDS,...",
        "Task duration histogram buckets, in seconds.",
        ", ".join(f"{b:g}" for b in DEFAULT_TASK_BUCKETS),
    ),
    Option(
        "--node-buckets",
        "SECONDS,...",
        "Node duration histogram buckets, in seconds.",
        ", ".join(f"{b:g}" for b in DEFAULT_NODE_BUCKETS),
    ),
    Option(
        "--read-timeout",
        "DURATION",
        "Reconnect when no event or comment completes within this.",
        "60s",
    ),
    Option("--max-event-bytes", "SIZE", "Skip (and count) events larger than this.", "16MiB"),
    Option(
        "--state-file", "FILE", "Save position and tasks in flight here; resume from it on start."
    ),
    Option("--checkpoint-interval", "DURATION", "How often to write the state file.", "5s"),
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
    Option("--recent-failures", "N", "Most recent failures kept for / and /failures.", "200"),
    Option("--web.max-connections", "N", "Most HTTP connections open at once.", "512"),
    Option(
        "--web.max-connections-per-client", "N", "Most HTTP connections per client address.", "32"
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
    ),
)


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


def parse_duration(text: str, flag: str) -> float:
    """`90`, `500ms`, `15s`, `5m`, `2h`, `1d` to seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise ConfigError(
            f"{flag} ({env_name(flag)}): {text!r} is not a duration like 30s, 15m or 24h"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_size(text: str, flag: str) -> int:
    """`1048576`, `512KiB`, `16MiB` to bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZES:
        raise ConfigError(f"{flag} ({env_name(flag)}): {text!r} is not a size like 16MiB")
    return int(match.group(1)) * _SIZES[match.group(2).lower()]


def _positive_int(text: str, flag: str) -> int:
    value = parse_positive_int(text)
    if value is None:
        raise ConfigError(f"{flag} ({env_name(flag)}): {text!r} is not a positive whole number")
    return value


def _buckets(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or list(values) != sorted(set(values)) or values[0] <= 0:
        raise ConfigError(
            f"{flag} ({env_name(flag)}): give increasing positive seconds, comma-separated"
        )
    return values


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) to a host and a port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{flag} ({env_name(flag)}): {text!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a server's default


def parse_since(text: str | None, now: datetime) -> str:
    """An ISO 8601 time or a look-back (`15m`) to the ISO 8601 `since` the protocol wants."""
    if not text:
        moment = now
    elif re.fullmatch(r"\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*", text):
        moment = now - timedelta(seconds=parse_duration(text, "--since"))
    else:
        seconds = parse_timestamp(text)
        if seconds is None:
            raise ConfigError(
                "--since (REQUENCE_EXPORTER_SINCE): give an ISO 8601 time such "
                "as 2026-11-22T10:00:00Z or a look-back such as 15m"
            )
        moment = datetime.fromtimestamp(seconds, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    # i may be a StatefulSet pod's name, which ends in its ordinal (exporter-2/3): the Helm
    # chart passes $(POD_NAME), which works on every Kubernetes version.
    match = re.fullmatch(r"\s*(?:[a-z0-9.-]*-)?(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise ConfigError(
            "--shard (REQUENCE_EXPORTER_SHARD): give i/n with 0 <= i < n, e.g. 0/3"
            " (or <pod name>-i/n)"
        )
    return int(match.group(1)), int(match.group(2))


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


def _trace_url_template(text: str | None) -> str | None:
    if not text:
        return None
    flag = "--trace-url-template"
    if "{trace_id}" not in text or not text.startswith(("http://", "https://")):
        raise ConfigError(
            f"{flag} ({env_name(flag)}): give an http(s):// URL holding {{trace_id}}, "
            "e.g. http://jaeger:16686/trace/{trace_id}"
        )
    return text


def resolve(
    args: argparse.Namespace, env: Mapping[str, str] | None = None, now: datetime | None = None
) -> Settings:
    """Validate parsed flags into Settings; raise ConfigError naming the flag to fix."""
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    level = str(args.log_level).lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(
            "--log-level (REQUENCE_EXPORTER_LOG_LEVEL): debug, info, warning or error"
        )
    if args.log_format not in {"text", "json"}:
        raise ConfigError("--log-format (REQUENCE_EXPORTER_LOG_FORMAT): text or json")
    return Settings(
        credentials=credentials_from(args, env),
        since=parse_since(args.since, now) if args.since else None,
        listen=parse_listen(args.listen),
        log_level=level,
        log_format=args.log_format,
        task_ttl=parse_duration(args.task_ttl, "--task-ttl"),
        max_tracked_tasks=_positive_int(args.max_tracked_tasks, "--max-tracked-tasks"),
        max_label_values=_positive_int(args.max_label_values, "--max-label-values"),
        task_buckets=_buckets(args.task_buckets, "--task-buckets"),
        node_buckets=_buckets(args.node_buckets, "--node-buckets"),
        read_timeout=parse_duration(args.read_timeout, "--read-timeout"),
        max_event_bytes=parse_size(args.max_event_bytes, "--max-event-bytes"),
        state_file=Path(args.state_file) if args.state_file else None,
        checkpoint_interval=parse_duration(args.checkpoint_interval, "--checkpoint-interval"),
        tracing=TracingSettings.from_env(env, force=bool(args.traces)),
        otlp_metrics=otlp_metrics_enabled(env, force=bool(args.otlp_metrics)),
        shard=_shard(args.shard),
        web_config_file=Path(args.web_config_file) if args.web_config_file else None,
        recent_failures=_positive_int(args.recent_failures, "--recent-failures"),
        trace_url_template=_trace_url_template(args.trace_url_template),
        log_failures=bool(args.log_failures),
        log_failures_per_second=_positive_int(
            args.log_failures_per_second, "--log-failures-per-second"
        ),
        server_limits=Limits(
            max_connections=_positive_int(args.web_max_connections, "--web.max-connections"),
            max_connections_per_client=_positive_int(
                args.web_max_connections_per_client, "--web.max-connections-per-client"
            ),
        ),
    )


def settings_for(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """Parse `run` flags from argv (for tests and embedding)."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser()
    add_options(parser, env)
    return resolve(parser.parse_args(list(argv)), env)
