"""The web config file (Prometheus exporter-toolkit format): TLS, basic auth, response headers.

`load_web_config(path)` validates the file into a `WebConfig`: an `ssl.SSLContext` for the
server, the basic auth users, and the headers to add to every response. Errors name the flag,
its variable and the key at fault, and never quote a hash or a key.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from exporter.core.errors import ConfigError
from exporter.core.headers import header_value_problem
from exporter.serving.basicauth import PROBE_PATHS, BasicAuth, BasicAuthHandler
from exporter.serving.http_exchange import Handler

__all__ = ["WebConfig", "load_web_config", "parse_web_config"]

log = logging.getLogger(__name__)

_SOURCE: Final = "--web.config.file (REQUENCE_EXPORTER_WEB_CONFIG_FILE)"
_TOP_KEYS: Final = frozenset({"tls_server_config", "http_server_config", "basic_auth_users"})
_TLS_KEYS: Final = frozenset(
    {
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "min_version",
        "max_version",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
    }
)
# Keys of newer exporter-toolkit releases that would weaken or change security if ignored.
_UNSUPPORTED: Final = {
    "client_allowed_sans": "checking client certificate SANs is not supported",
    "cert": "inline certificates are not supported; use cert_file",
    "key": "inline keys are not supported; use key_file",
    "rate_limit": "rate limiting is not supported",
}
_VERSIONS: Final = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH: Final = {
    # Python cannot ask for a client certificate without checking it; since the exporter
    # never looks at an unchecked certificate, not asking is equivalent.
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go's names (which the file uses) to OpenSSL's; like Go, they restrict TLS 1.2 and older only.
_CIPHERS: Final = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# The headers exporter-toolkit lets a config set, with the values it accepts (None: any).
_HEADERS: Final[Mapping[str, frozenset[str] | None]] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": frozenset({"nosniff"}),
    "X-Frame-Options": frozenset({"deny", "sameorigin"}),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_BCRYPT: Final = re.compile(r"\$2[abxy]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True)
class WebConfig:
    """What the web config file asks of the HTTP server."""

    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()

    def wrap(self, handler: Handler, *, exempt: frozenset[str] = PROBE_PATHS) -> Handler:
        """`handler` behind basic auth when users are configured (`exempt` paths stay open)."""
        if not self.users:
            return handler
        return BasicAuthHandler(handler, BasicAuth(self.users), exempt=exempt)


class _Errors:
    """Builds ConfigErrors that name the file and the key at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{_SOURCE} {self.path}: {key}: {problem}")


def load_web_config(path: Path) -> WebConfig:
    """Read and validate the web config file at `path`; raise ConfigError naming the key."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{_SOURCE}: cannot read {path}: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        # The parser's own message may quote the file's text, hashes included: leave it out.
        raise ConfigError(f"{_SOURCE} {path}: not valid YAML{where}") from None
    return parse_web_config(data, path)


def parse_web_config(data: object, path: Path) -> WebConfig:
    """Validate parsed YAML into a WebConfig; relative file names resolve beside `path`."""
    fail = _Errors(path)
    if data is None:
        log.info("%s %s is empty: serving plain HTTP without authentication", _SOURCE, path)
        return WebConfig()
    top = _mapping(data, "(top level)", fail)
    _known_keys(top, _TOP_KEYS, "", fail)
    tls = _mapping(top.get("tls_server_config"), "tls_server_config", fail)
    http = _mapping(top.get("http_server_config"), "http_server_config", fail)
    users = _users(top.get("basic_auth_users"), fail)
    context = _ssl_context(tls, path.parent, fail) if tls else None
    headers = _headers(http, fail)
    if users and context is None:
        log.warning(
            "%s: basic auth without tls_server_config sends passwords in clear text", _SOURCE
        )
    return WebConfig(ssl_context=context, users=users, headers=headers)


def _mapping(value: object, key: str, fail: _Errors) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise fail(key, "must be a mapping of names to values")
    return value


def _known_keys(
    section: Mapping[str, Any], known: frozenset[str], prefix: str, fail: _Errors
) -> None:
    for key in section:
        if key in _UNSUPPORTED:
            raise fail(prefix + key, _UNSUPPORTED[key])
        if key not in known:
            raise fail(prefix + key, f"unknown key; expected one of {', '.join(sorted(known))}")


def _string(section: Mapping[str, Any], key: str, prefix: str, fail: _Errors) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise fail(prefix + key, "must be a string")
    return value


def _users(value: object, fail: _Errors) -> dict[str, bytes]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("basic_auth_users", "must be a mapping of user names to bcrypt hashes")
    users: dict[str, bytes] = {}
    for user, hashed in value.items():
        if not isinstance(user, str) or not user or ":" in user:
            # A YAML key such as `yes` or `123` is not text; quote it in the file.
            raise fail("basic_auth_users", "user names must be non-empty text without ':'")
        problem = header_value_problem(user)
        if problem is not None:
            # Not quoted: it would forge a log line or hold part of a password.
            raise fail("basic_auth_users", f"a user name {problem}: use visible ASCII")
        if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            raise fail(f"basic_auth_users.{user}", "is not a bcrypt hash")
        users[user] = hashed.encode("ascii")
    return users


def _headers(http: Mapping[str, Any], fail: _Errors) -> tuple[tuple[str, str], ...]:
    _known_keys(http, frozenset({"headers", "http2"}), "http_server_config.", fail)
    if http.get("http2"):
        log.debug("http_server_config.http2 ignored: the server speaks HTTP/1.1")
    configured = _mapping(http.get("headers"), "http_server_config.headers", fail)
    canonical = {name.lower(): name for name in _HEADERS}
    headers: list[tuple[str, str]] = []
    for name, value in configured.items():
        key = f"http_server_config.headers.{name}"
        proper = canonical.get(name.lower())
        if proper is None:
            raise fail(key, f"cannot be set; allowed: {', '.join(_HEADERS)}")
        if not isinstance(value, str) or header_value_problem(value, inner_spaces=True):
            raise fail(key, "must be a one-line string of visible ASCII")
        allowed = _HEADERS[proper]
        if allowed is not None and value.lower() not in allowed:
            raise fail(key, f"must be one of {', '.join(sorted(allowed))}")
        headers.append((proper, value))
    return tuple(headers)


def _ssl_context(tls: Mapping[str, Any], base: Path, fail: _Errors) -> ssl.SSLContext:
    prefix = "tls_server_config."
    _known_keys(tls, _TLS_KEYS, prefix, fail)
    cert = _string(tls, "cert_file", prefix, fail)
    key = _string(tls, "key_file", prefix, fail)
    if cert is None or key is None:
        missing = "cert_file" if cert is None else "key_file"
        raise fail(prefix + missing, "is required when tls_server_config is set")
    auth_name = _string(tls, "client_auth_type", prefix, fail) or "NoClientCert"
    if auth_name == "RequireAnyClientCert":
        raise fail(
            prefix + "client_auth_type",
            "RequireAnyClientCert is not supported; use RequireAndVerifyClientCert "
            "with client_ca_file",
        )
    if auth_name not in _CLIENT_AUTH:
        raise fail(prefix + "client_auth_type", f"must be one of {', '.join(_CLIENT_AUTH)}")
    client_ca = _string(tls, "client_ca_file", prefix, fail)
    verify_mode = _CLIENT_AUTH[auth_name]
    if client_ca is not None and verify_mode == ssl.CERT_NONE:
        raise fail(
            prefix + "client_ca_file",
            "is set but client_auth_type does not verify client certificates "
            "(use VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
        )
    if client_ca is None and verify_mode != ssl.CERT_NONE:
        raise fail(prefix + "client_ca_file", f"is required with client_auth_type {auth_name}")
    lowest = _version(tls, "min_version", "TLS12", fail)
    highest = _version(tls, "max_version", "TLS13", fail)
    if lowest > highest:
        raise fail(prefix + "min_version", "is above max_version")

    if tls.get("curve_preferences"):
        log.info(
            "%s: tls_server_config.curve_preferences ignored: OpenSSL's defaults apply", _SOURCE
        )
    cert_path, key_path = base / cert, base / key
    ca_path = base / client_ca if client_ca is not None else None

    def build() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = lowest
        context.maximum_version = highest
        _readable(cert_path, prefix + "cert_file", fail)
        _readable(key_path, prefix + "key_file", fail)
        try:
            # An encrypted key would make OpenSSL prompt on the terminal; refuse it instead.
            context.load_cert_chain(cert_path, key_path, password=lambda: b"")
        except OSError:
            raise fail(
                prefix + "cert_file",
                f"{cert_path} and key_file {key_path} are not a usable certificate and key "
                "(PEM files; the key unencrypted and matching the certificate)",
            ) from None
        if ca_path is not None:
            _readable(ca_path, prefix + "client_ca_file", fail)
            try:
                context.load_verify_locations(cafile=ca_path)
            except OSError:
                raise fail(
                    prefix + "client_ca_file", f"{ca_path} holds no PEM certificates"
                ) from None
        context.verify_mode = verify_mode
        _ciphers(context, tls, fail)
        if tls.get("prefer_server_cipher_suites", True):
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        return context

    context = build()
    files = tuple(p for p in (cert_path, key_path, ca_path) if p is not None)
    context.sni_callback = _Reloader(build, files, context)
    return context


def _stamp(files: tuple[Path, ...]) -> tuple[tuple[int, int, int] | None, ...]:
    stamps: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            info = path.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


class _Reloader:
    """Serves each handshake from the current certificate files, so rotation needs no restart.

    Runs as the context's SNI callback, which OpenSSL calls on every handshake (with or without
    SNI); it costs a few stat() calls, and a reload only when a file changed.
    """

    def __init__(
        self,
        build: Callable[[], ssl.SSLContext],
        files: tuple[Path, ...],
        context: ssl.SSLContext,
    ) -> None:
        self._build = build
        self._files = files
        self._current = context
        self._stamp = _stamp(files)

    def __call__(
        self, connection: ssl.SSLObject, _server_name: str | None, context: ssl.SSLContext
    ) -> None:
        stamp = _stamp(self._files)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._current = self._build()
            except ConfigError as exc:
                # Mid-rotation files may be half written; the next change is tried again.
                log.warning("%s; keeping the previous certificate", exc)
            else:
                log.info("%s: reloaded the TLS certificate files", _SOURCE)
        if self._current is not context:
            connection.context = self._current


def _readable(path: Path, key: str, fail: _Errors) -> None:
    try:
        with path.open("rb"):
            return
    except OSError as exc:
        raise fail(key, f"cannot read {path}: {exc.strerror}") from None


def _version(tls: Mapping[str, Any], key: str, default: str, fail: _Errors) -> ssl.TLSVersion:
    name = _string(tls, key, "tls_server_config.", fail) or default
    if name not in _VERSIONS:
        raise fail(f"tls_server_config.{key}", f"must be one of {', '.join(_VERSIONS)}")
    return _VERSIONS[name]


def _ciphers(context: ssl.SSLContext, tls: Mapping[str, Any], fail: _Errors) -> None:
    suites = tls.get("cipher_suites")
    if not suites:
        return
    key = "tls_server_config.cipher_suites"
    if not isinstance(suites, list) or not all(isinstance(s, str) for s in suites):
        raise fail(key, "must be a list of cipher suite names")
    unknown = [s for s in suites if s not in _CIPHERS]
    if unknown:
        raise fail(key, f"unknown or unsupported suites: {', '.join(unknown)}")
    try:
        context.set_ciphers(":".join(_CIPHERS[s] for s in suites))
    except ssl.SSLError:
        raise fail(key, "none of these suites is available in this OpenSSL build") from None
