"""Settings: flags and `REQUENCE_EXPORTER_*` variables resolved once into a frozen dataclass.

Every option has a domain (`exporter.core.domains`: a range for each number and duration, a
choice, a shape) checked here, where it enters. Every error names the flag and the environment
variable to fix, and never quotes a secret.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from exporter.core import (
    Buckets,
    ConfigError,
    Duration,
    Size,
    Whole,
    env_name,
    parse_duration,
    parse_listen,
    parse_shard,
    parse_since,
    parse_size,
    parse_switch,
    parse_trace_url_template,
)
from exporter.metrics import DEFAULT_NODE_BUCKETS, DEFAULT_TASK_BUCKETS, otlp_metrics_enabled
from exporter.requence import Credentials, decode_token, url_credentials_problem
from exporter.traces import TracingSettings

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
    """One `run` flag: its name, help, default (as text), whether it is a switch, and the
    domain of a numeric one (the others are checked by their own parsers in `resolve`)."""

    flag: str
    help: str
    default: str | None = None
    switch: bool = False
    domain: Domain | None = None


OPTIONS: Final = (
    Option(
        "--access-token",
        "Requence access token (else REQUENCE_TASK_ACCESS_TOKEN, then REQUENCE_ACCESS_TOKEN). "
        "Visible to anyone who can list processes (ps): prefer --access-token-file or a "
        "variable.",
    ),
    Option("--access-token-file", "File holding the access token."),
    Option("--api-url", "Requence API base URL, used with --bearer-token instead of a token."),
    Option(
        "--bearer-token",
        "Bearer token, used with --api-url. Visible in ps: prefer --bearer-token-file.",
    ),
    Option("--bearer-token-file", "File holding the bearer token, used with --api-url."),
    Option(
        "--since",
        "Watch updates after this ISO 8601 time or look-back (15m, 2h); "
        "default: start-up time, or the state file's.",
    ),
    Option("--listen", "HOST:PORT to serve /metrics on.", f"0.0.0.0:{DEFAULT_PORT}"),
    Option("--log-level", "debug, info, warning or error.", "info"),
    Option("--log-format", "text or json.", "text"),
    Option(
        "--task-ttl",
        "Forget a task not updated for this long (e.g. 24h).",
        "24h",
        domain=Duration(1.0, 365 * _DAY),
    ),
    Option(
        "--max-tracked-tasks",
        "Most tasks held in memory; the least recently updated leave first.",
        "100000",
        domain=Whole(1, 10_000_000),
    ),
    Option(
        "--max-label-values",
        "Most distinct values per label; more become __other__.",
        "1000",
        domain=Whole(1, 1_000_000),
    ),
    Option(
        "--task-buckets",
        "Task duration buckets in seconds, comma-separated.",
        ",".join(str(b) for b in DEFAULT_TASK_BUCKETS),
        domain=Buckets(0.0001, 365 * _DAY),
    ),
    Option(
        "--node-buckets",
        "Node duration buckets in seconds, comma-separated.",
        ",".join(str(b) for b in DEFAULT_NODE_BUCKETS),
        domain=Buckets(0.0001, 365 * _DAY),
    ),
    Option(
        "--read-timeout",
        "Reconnect when no event or comment completes within this.",
        "60s",
        domain=Duration(1.0, _DAY),
    ),
    Option(
        "--max-event-bytes",
        "Skip (and count) events larger than this.",
        "16MiB",
        domain=Size(1024, 256 * 1024 * 1024),
    ),
    Option("--state-file", "Save position and tasks in flight here; resume from it on start."),
    Option(
        "--checkpoint-interval",
        "How often to write the state file.",
        "5s",
        domain=Duration(1.0, _DAY),
    ),
    Option("--traces", "Export spans even without OTEL_EXPORTER_OTLP_*ENDPOINT set.", switch=True),
    Option("--otlp-metrics", "Also push the metrics over OTLP.", switch=True),
    Option(
        "--shard",
        "i/n: process only this share of root tasks (replicas 0..n-1); i may be a pod name"
        " ending in -i.",
    ),
    Option("--web.config.file", "Exporter-toolkit web config (TLS, basic auth) for the server."),
    Option(
        "--recent-failures",
        "Most recent failures kept for / and /failures.",
        "200",
        domain=Whole(1, 100_000),
    ),
    Option(
        "--trace-url-template",
        "URL of a trace, with {trace_id}, to link each failure on the status page to.",
    ),
    Option("--log-failures", "Log one structured line per failure.", switch=True),
    Option(
        "--log-failures-per-second",
        "Most failure lines logged a second; the rest are counted as suppressed.",
        "20",
        domain=Whole(1, 100_000),
    ),
)
_OPTIONS_BY_FLAG: Final = {opt.flag: opt for opt in OPTIONS}


def _dest(flag: str) -> str:
    return re.sub(r"[-.]", "_", flag.lstrip("-"))


def add_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Add every `run` flag, defaulting to its environment variable, then to its default."""
    for opt in OPTIONS:
        name = env_name(opt.flag)
        from_env = env.get(name)
        if opt.switch:
            try:
                enabled = parse_switch(env, opt.flag)
            except ConfigError:
                enabled = False  # refused by `resolve`, which can exit with the message
            parser.add_argument(
                opt.flag,
                dest=_dest(opt.flag),
                action="store_true",
                default=enabled,
                help=f"{opt.help} [{name}]",
            )
        else:
            parser.add_argument(
                opt.flag,
                dest=_dest(opt.flag),
                metavar="VALUE",
                default=from_env if from_env is not None else opt.default,
                help=f"{opt.help} [{name}]",
            )


def _in_domain(args: argparse.Namespace, flag: str) -> Any:
    """The value of a numeric option, checked against its domain."""
    domain = _OPTIONS_BY_FLAG[flag].domain
    assert domain is not None, flag
    return domain.parse(str(getattr(args, _dest(flag))), flag)


def _read_secret(path: str, flag: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{flag} ({env_name(flag)}): cannot read {path}: {exc.strerror}"
        ) from None
    if not value:
        raise ConfigError(f"{flag} ({env_name(flag)}): {path} is empty")
    return value


_NO_CREDENTIALS: Final = (
    "no Requence credentials: set --access-token or --access-token-file "
    "(REQUENCE_EXPORTER_ACCESS_TOKEN, REQUENCE_TASK_ACCESS_TOKEN or REQUENCE_ACCESS_TOKEN), "
    "or --api-url with --bearer-token or --bearer-token-file"
)


def credentials_from(args: argparse.Namespace, env: Mapping[str, str]) -> Credentials:
    """Find the credentials in the documented order; raise ConfigError naming what to set."""
    if args.api_url:
        bearer = args.bearer_token or (
            _read_secret(args.bearer_token_file, "--bearer-token-file")
            if args.bearer_token_file
            else None
        )
        if not bearer:
            raise ConfigError(
                "--api-url needs --bearer-token or --bearer-token-file "
                "(REQUENCE_EXPORTER_BEARER_TOKEN[_FILE])"
            )
        if not args.api_url.startswith(("http://", "https://")):
            raise ConfigError("--api-url (REQUENCE_EXPORTER_API_URL): give an http(s):// URL")
        problem = url_credentials_problem(args.api_url)
        if problem:
            raise ConfigError(f"--api-url (REQUENCE_EXPORTER_API_URL): {problem}")
        return Credentials(args.api_url.rstrip("/"), bearer)
    sources: list[tuple[str, Callable[[], str | None]]] = [
        ("--access-token", lambda: args.access_token),
        (
            "--access-token-file",
            lambda: (
                _read_secret(args.access_token_file, "--access-token-file")
                if args.access_token_file
                else None
            ),
        ),
        ("REQUENCE_TASK_ACCESS_TOKEN", lambda: env.get("REQUENCE_TASK_ACCESS_TOKEN")),
        ("REQUENCE_ACCESS_TOKEN", lambda: env.get("REQUENCE_ACCESS_TOKEN")),
    ]
    for source, read in sources:
        token = read()
        if token:
            try:
                return decode_token(token)
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc} (from {source}); copy the token again from Requence"
                ) from None
    raise ConfigError(_NO_CREDENTIALS)


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
    for opt in OPTIONS:
        if opt.switch:
            parse_switch(env, opt.flag)  # a variable that is neither true nor false is refused
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
    )


def settings_for(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Settings:
    """Parse `run` flags from argv (for tests and embedding)."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser()
    add_options(parser, env)
    return resolve(parser.parse_args(list(argv)), env)


def describe(settings: Settings) -> dict[str, Any]:
    """Settings for the start-up log line, secrets left out."""
    return {
        "api_url": settings.credentials.api_url,
        "listen": f"{settings.listen[0]}:{settings.listen[1]}",
        "since": settings.since or "(state file or now)",
        "state_file": str(settings.state_file) if settings.state_file else None,
        "shard": "/".join(map(str, settings.shard)) if settings.shard else None,
        "max_tracked_tasks": settings.max_tracked_tasks,
        "traces": settings.tracing.endpoint if settings.tracing.enabled else "off",
    }
