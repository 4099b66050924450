"""OTLP trace export settings from the standard `OTEL_*` variables, resolved once at start-up.

Signal-specific variables (`OTEL_EXPORTER_OTLP_TRACES_*`) win over the generic ones. Durations
follow the OpenTelemetry specification: a number in `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` and
the `OTEL_BSP_*` delays is milliseconds (with a unit, `10s`, it is what it says). TLS files
are checked here, at start-up, so that a missing or malformed one stops the exporter with a
message naming its variable (never its contents).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from exporter.core.errors import ConfigError
from exporter.core.headers import header_value_problem
from exporter.core.units import parse_duration, parse_whole

__all__ = [
    "BSP_EXPORT_TIMEOUT",
    "BSP_MAX_EXPORT_BATCH_SIZE",
    "BSP_MAX_QUEUE_SIZE",
    "BSP_SCHEDULE_DELAY",
    "DEFAULT_SERVICE_NAME",
    "PROTOCOLS",
    "TracingSettings",
    "env_duration_ms",
    "env_positive_int",
    "otlp_metrics_enabled",
    "parse_headers",
]

DEFAULT_SERVICE_NAME: Final = "requence"
PROTOCOLS: Final = ("http/protobuf", "grpc")
COMPRESSIONS: Final = ("none", "gzip")
DEFAULT_HTTP_ENDPOINT: Final = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT: Final = "http://localhost:4317"
TRACES_PATH: Final = "/v1/traces"

# (variable, default) pairs of the batch settings, as the specification names them.
BSP_MAX_QUEUE_SIZE: Final = ("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
BSP_MAX_EXPORT_BATCH_SIZE: Final = ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
BSP_SCHEDULE_DELAY: Final = ("OTEL_BSP_SCHEDULE_DELAY", 5000)  # milliseconds
BSP_EXPORT_TIMEOUT: Final = ("OTEL_BSP_EXPORT_TIMEOUT", 30000)  # milliseconds
DEFAULT_BLOCK_TIMEOUT: Final = 5.0  # seconds a full queue may hold the stream back per stall


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of `names` set to a non-blank value, with that value."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


# The largest queue or batch a variable may ask for, and the longest duration: a day.
_MAX_COUNT = 1_000_000
_MAX_SECONDS = 86_400.0


def env_positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer variable (up to a million), or `default` when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_whole(raw, 1, _MAX_COUNT)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def env_duration_ms(
    environ: Mapping[str, str], name: str, default_ms: float, *, low: float = 0.0
) -> float:
    """A duration variable (from `low` seconds up to a day), a lone number in milliseconds as
    the specification has it, or `default_ms` when unset; returned in seconds."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default_ms / 1000.0
    try:
        return parse_duration(raw, lone="ms", low=low, high=_MAX_SECONDS)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def otlp_metrics_enabled(environ: Mapping[str, str], *, force: bool) -> bool:
    """The OTLP metrics push is on with --otlp-metrics or when
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set."""
    return force or bool(environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def _no_password() -> bytes:
    # An encrypted key would make OpenSSL prompt on the terminal; an empty password fails it.
    return b""


def _readable(var: tuple[str, str] | None) -> str | None:
    """The path a TLS file variable names, once it is known to be readable."""
    if var is None:
        return None
    name, path = var
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as exc:
        raise ConfigError(f"{name}={path!r}: cannot read the file ({exc.strerror})") from None
    return path


def _tls_files(
    environ: Mapping[str, str], signal: str
) -> tuple[str | None, str | None, str | None]:
    """The CA certificate, client certificate and client key files, checked."""
    ca_var = _first(
        environ, f"OTEL_EXPORTER_OTLP_{signal}_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"
    )
    cert_var = _first(
        environ,
        f"OTEL_EXPORTER_OTLP_{signal}_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    )
    key_var = _first(
        environ, f"OTEL_EXPORTER_OTLP_{signal}_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"
    )
    ca, cert, key = _readable(ca_var), _readable(cert_var), _readable(key_var)
    if ca_var:
        try:
            ssl.create_default_context(cafile=ca)
        except ssl.SSLError:
            raise ConfigError(f"{ca_var[0]}={ca!r} holds no PEM certificate") from None
    if cert_var and not key_var:
        raise ConfigError(f"{cert_var[0]} needs OTEL_EXPORTER_OTLP_[{signal}_]CLIENT_KEY too")
    if key_var and not cert_var:
        raise ConfigError(
            f"{key_var[0]} needs OTEL_EXPORTER_OTLP_[{signal}_]CLIENT_CERTIFICATE too"
        )
    if cert_var and key_var:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_cert_chain(cert_var[1], key_var[1], password=_no_password)
        except ssl.SSLError:
            raise ConfigError(
                f"{cert_var[0]}={cert!r} and {key_var[0]}={key!r} are not a PEM certificate "
                "and its unencrypted private key"
            ) from None
    return ca, cert, key


def _env_bool(environ: Mapping[str, str], *names: str) -> bool:
    var = _first(environ, *names)
    if var is None:
        return False
    value = var[1].lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{var[0]}={var[1]!r} must be true or false")
    return value == "true"


def _parse_pairs(raw: str, name: str) -> tuple[tuple[str, str], ...]:
    """`key1=value1,key2=value2` with percent-encoded values (headers, resource attributes)."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = unquote(key).strip()
        if not sep or not key:
            raise ConfigError(f"{name}: expected key=value pairs separated by commas")
        pairs[key] = unquote(value).strip()
    return tuple(pairs.items())


_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_headers(raw: str, name: str) -> tuple[tuple[str, str], ...]:
    """The `key=value` pairs of an `OTEL_EXPORTER_OTLP_*HEADERS` variable, names in lower case.

    Each must be sendable as it is: values carry credentials, and the HTTP stack's refusal of a
    malformed one would quote it. Errors name the variable and the header, never the value.
    """
    headers = []
    for key, value in _parse_pairs(raw, name):
        if not _HEADER_NAME.fullmatch(key):
            raise ConfigError(f"{name}: a header name holds a character no header name may hold")
        problem = header_value_problem(value, inner_spaces=True)
        if problem is not None:
            raise ConfigError(f"{name}: the value of header {key} {problem}")
        headers.append((key.lower(), value))
    return tuple(headers)


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Everything the trace sink needs, resolved from flags and `OTEL_*` variables."""

    enabled: bool = False
    protocol: str = "http/protobuf"
    # The full URL to send to: `.../v1/traces` for http/protobuf, `scheme://host:port` for grpc.
    endpoint: str = DEFAULT_HTTP_ENDPOINT + TRACES_PATH
    headers: tuple[tuple[str, str], ...] = ()  # values are secrets: never logged
    timeout: float = 10.0  # seconds per export request
    compression: str = "none"
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: tuple[tuple[str, str], ...] = ()
    max_queue_size: int = BSP_MAX_QUEUE_SIZE[1]
    max_export_batch_size: int = BSP_MAX_EXPORT_BATCH_SIZE[1]
    schedule_delay: float = BSP_SCHEDULE_DELAY[1] / 1000.0  # seconds
    export_timeout: float = BSP_EXPORT_TIMEOUT[1] / 1000.0  # seconds; bounds a flush on stop
    block_timeout: float = DEFAULT_BLOCK_TIMEOUT
    # TLS files (paths), for https:// and for gRPC with TLS; None: the system's CAs, no client
    # certificate.
    certificate: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    # gRPC only: plaintext for an endpoint without a scheme (http:// is always plaintext,
    # https:// always TLS).
    insecure: bool = False

    def resource(self) -> dict[str, str]:
        """The resource attributes of every span: the extras, then `service.name`."""
        attributes = dict(self.resource_attributes)
        attributes["service.name"] = self.service_name
        return attributes

    def __repr__(self) -> str:
        # Header values carry credentials (API keys): show the names only.
        names = ",".join(k for k, _ in self.headers)
        return (
            f"TracingSettings(enabled={self.enabled}, protocol={self.protocol!r}, "
            f"endpoint={self.endpoint!r}, headers=[{names}], timeout={self.timeout}, "
            f"compression={self.compression!r}, service_name={self.service_name!r})"
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        force: bool = False,
        block_timeout: float = DEFAULT_BLOCK_TIMEOUT,
        signal: str = "traces",
    ) -> TracingSettings:
        """Resolve the settings; tracing is on when an endpoint is set or `force` (--traces).

        `signal="metrics"` reads the `OTEL_EXPORTER_OTLP_METRICS_*` variables instead, and
        sends to `/v1/metrics`: the settings of the OTLP metrics push.
        """
        env = os.environ if environ is None else environ
        own = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"
        path = f"/v1/{signal}"
        protocol_var = _first(env, own + "PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        protocol = protocol_var[1].lower() if protocol_var else PROTOCOLS[0]
        if protocol_var and protocol not in PROTOCOLS:
            raise ConfigError(
                f"{protocol_var[0]}={protocol_var[1]!r} is not supported; use one of "
                + ", ".join(PROTOCOLS)
            )
        grpc = protocol == "grpc"
        specific = _first(env, own + "ENDPOINT")
        base = _first(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
        if specific:
            endpoint = specific[1]  # used as is: so says the specification for signal endpoints
        elif base:
            # A base URL: http/protobuf appends the signal path, gRPC takes it as it is.
            endpoint = base[1] if grpc else base[1].rstrip("/") + path
        else:
            endpoint = DEFAULT_GRPC_ENDPOINT if grpc else DEFAULT_HTTP_ENDPOINT + path
        if not grpc and not endpoint.startswith(("http://", "https://")):
            var = specific[0] if specific else "OTEL_EXPORTER_OTLP_ENDPOINT"
            raise ConfigError(f"{var}={endpoint!r} must be an http:// or https:// URL")

        headers_var = _first(env, own + "HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
        headers = parse_headers(headers_var[1], headers_var[0]) if headers_var else ()

        timeout_var = _first(env, own + "TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        timeout = 10.0
        if timeout_var:
            timeout = env_duration_ms(env, timeout_var[0], 10_000)
            if timeout <= 0:
                raise ConfigError(f"{timeout_var[0]}={timeout_var[1]!r} must be above zero")

        compression_var = _first(env, own + "COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
        compression = compression_var[1].lower() if compression_var else "none"
        if compression_var and compression not in COMPRESSIONS:
            raise ConfigError(
                f"{compression_var[0]}={compression_var[1]!r} is not supported; use none or gzip"
            )

        resource_var = _first(env, "OTEL_RESOURCE_ATTRIBUTES")
        resource = _parse_pairs(resource_var[1], resource_var[0]) if resource_var else ()
        service_var = _first(env, "OTEL_SERVICE_NAME")
        service = service_var[1] if service_var else dict(resource).get("service.name")

        certificate, client_certificate, client_key = _tls_files(env, signal.upper())
        insecure = _env_bool(env, own + "INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")

        max_queue = env_positive_int(env, *BSP_MAX_QUEUE_SIZE)
        batch = env_positive_int(env, *BSP_MAX_EXPORT_BATCH_SIZE)
        return cls(
            enabled=force or bool(specific or base),
            protocol=protocol,
            endpoint=endpoint,
            headers=headers,
            timeout=timeout,
            compression=compression,
            service_name=service or DEFAULT_SERVICE_NAME,
            resource_attributes=tuple((k, v) for k, v in resource if k != "service.name"),
            max_queue_size=max_queue,
            # The specification: a batch never exceeds the queue.
            max_export_batch_size=min(batch, max_queue),
            schedule_delay=env_duration_ms(env, *BSP_SCHEDULE_DELAY),
            export_timeout=env_duration_ms(env, *BSP_EXPORT_TIMEOUT),
            block_timeout=block_timeout,
            certificate=certificate,
            client_certificate=client_certificate,
            client_key=client_key,
            insecure=insecure,
        )
