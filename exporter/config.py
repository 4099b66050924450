"""Settings: flags and `REQUENCE_EXPORTER_*` variables resolved once into a frozen dataclass.

Every option has a domain (`exporter.core.domains`: a range for each number and duration, a
choice, a shape) checked here, where it enters. Every error names the flag and the environment
variable to fix, and never quotes a secret.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from exporter.core.domains import (
    Buckets,
    Duration,
    Size,
    Whole,
    parse_duration,
    parse_listen,
    parse_shard,
    parse_since,
    parse_size,
    parse_trace_url_template,
)
from exporter.core.errors import ConfigError
from exporter.core.options import bind_environment, env_name
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
    "parse_duration",
    "parse_listen",
    "parse_since",
    "parse_size",
    "resolve",
]

DEFAULT_PORT: Final = 9721
_DAY: Final = 86400.0
Domain = Duration | Size | Whole | Buckets


class Option(NamedTuple):
    """One `run` flag: its name, metavar (None for a switch), help, default (as text), and the
    domain of a numeric one (the others are checked by their own parsers in `resolve`)."""

    flag: str
    metavar: str | None
    help: str
    default: str | None = None
    domain: Domain | None = None


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
        Duration(1.0, 365 * _DAY),
    ),
    Option(
        "--max-tracked-tasks",
        "N",
        "Most tasks held in memory; the least recently updated leave first.",
        "100000",
        Whole(1, 10_000_000),
    ),
    Option(
        "--max-label-values",
        "N",
        "Most distinct values per label; more become __other__.",
        "1000",
        Whole(1, 1_000_000),
    ),
    Option(
        "--task-buckets",
        "SECONDS,...",
        "Task duration histogram buckets, in seconds.",
        ", ".join(f"{b:g}" for b in DEFAULT_TASK_BUCKETS),
        Buckets(0.0001, 365 * _DAY),
    ),
    Option(
        "--node-buckets",
        "SECONDS,...",
        "Node duration histogram buckets, in seconds.",
        ", ".join(f"{b:g}" for b in DEFAULT_NODE_BUCKETS),
        Buckets(0.0001, 365 * _DAY),
    ),
    Option(
        "--read-timeout",
        "DURATION",
        "Reconnect when no event or comment completes within this.",
        "60s",
        Duration(1.0, _DAY),
    ),
    Option(
        "--max-event-bytes",
        "SIZE",
        "Skip (and count) events larger than this.",
        "16MiB",
        Size(1024, 256 * 1024 * 1024),
    ),
    Option(
        "--state-file", "FILE", "Save position and tasks in flight here; resume from it on start."
    ),
    Option(
        "--checkpoint-interval",
        "DURATION",
        "How often to write the state file.",
        "5s",
        Duration(1.0, _DAY),
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
        Whole(1, 100_000),
    ),
    Option(
        "--web.max-connections",
        "N",
        "Most HTTP connections open at once.",
        "512",
        Whole(1, 1_000_000),
    ),
    Option(
        "--web.max-connections-per-client",
        "N",
        "Most HTTP connections per client address.",
        "32",
        Whole(1, 1_000_000),
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
        Whole(1, 100_000),
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


def _in_domain(args: argparse.Namespace, flag: str) -> Any:
    """The value of a numeric option, checked against its domain."""
    domain = _OPTIONS_BY_FLAG[flag].domain
    assert domain is not None, flag
    return domain.parse(str(getattr(args, _dest(flag))), flag)


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
    state_file = Path(args.state_file) if args.state_file else None
    if state_file is not None and state_file.is_dir():
        raise ConfigError(
            f"--state-file (REQUENCE_EXPORTER_STATE_FILE): {args.state_file!r:.80} is a "
            "directory: name a file in it"
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
        read_timeout=_in_domain(args, "--read-timeout"),
        max_event_bytes=_in_domain(args, "--max-event-bytes"),
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
