"""The exporter's own failures, as one small exception tree.

    ExporterError
    ├── ConfigError          a setting is missing or malformed (exit 2, names the flag to fix)
    │   └── TokenError       the access token cannot be decoded
    └── StreamError          the watch-all stream failed
        ├── Unauthorized     401/403: the token is wrong or lacks access
        ├── NotFound         404: the API URL does not point at Requence
        └── Unreachable      502/503/504, refused, timed out: transient, retried forever

Messages never contain a secret.
"""

__all__ = [
    "ConfigError",
    "ExporterError",
    "NotFound",
    "StreamError",
    "TokenError",
    "Unauthorized",
    "Unreachable",
]


class ExporterError(Exception):
    """Base of every error the exporter raises on purpose."""


class ConfigError(ExporterError):
    """A setting is missing or malformed; the message names the flag and variable to fix."""


class TokenError(ConfigError):
    """The Requence access token cannot be decoded."""


class StreamError(ExporterError):
    """The watch-all stream failed."""


class Unauthorized(StreamError):
    """The server refused the bearer token (401 or 403)."""


class NotFound(StreamError):
    """The watch-all endpoint does not exist at the configured API URL (404)."""


class Unreachable(StreamError):
    """The server cannot be reached right now; retried with backoff."""
