"""Where the Requence credentials come from: flags, files and variables, in a documented order.

Each source is checked where it enters: the bearer token travels in an HTTP header, so it must
be visible ASCII, and the API URL must be an http(s) URL without a user or password. Messages
name the flag or variable to fix and never quote a token.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from exporter.core.errors import ConfigError
from exporter.core.headers import header_value_problem
from exporter.core.options import env_name
from exporter.requence.token import Credentials, decode_token, url_credentials_problem

__all__ = ["credentials_from", "read_secret"]

_NO_CREDENTIALS: Final = (
    "no Requence credentials: set --access-token or --access-token-file "
    "(REQUENCE_EXPORTER_ACCESS_TOKEN, REQUENCE_TASK_ACCESS_TOKEN or REQUENCE_ACCESS_TOKEN), "
    "or --api-url with --bearer-token or --bearer-token-file"
)


def _named(flag: str) -> str:
    """A flag with the variable that sets it, as every message names them."""
    return f"{flag} ({env_name(flag)})"


def read_secret(path: str, flag: str) -> str:
    """The secret in the file at `path` (surrounding whitespace removed), for `flag`."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{_named(flag)}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{_named(flag)}: {path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{_named(flag)}: {path} is empty")
    return value


def _checked(credentials: Credentials, source: str) -> Credentials:
    problem = header_value_problem(credentials.bearer_token)
    if problem is not None:
        raise ConfigError(
            f"{source}: the bearer token {problem}; a token is visible ASCII on one line: "
            "copy it again, without line breaks or other text"
        )
    if header_value_problem(credentials.api_url) is not None:
        raise ConfigError(f"{source}: the API URL holds a space, control or non-ASCII character")
    return credentials


def credentials_from(args: argparse.Namespace, env: Mapping[str, str]) -> Credentials:
    """Find the credentials in the documented order; raise ConfigError naming what to set."""
    if args.api_url:
        source = "--bearer-token"
        bearer = args.bearer_token
        if not bearer and args.bearer_token_file:
            source = "--bearer-token-file"
            bearer = read_secret(args.bearer_token_file, source)
        if not bearer:
            raise ConfigError(
                "--api-url needs --bearer-token or --bearer-token-file "
                "(REQUENCE_EXPORTER_BEARER_TOKEN[_FILE])"
            )
        if not args.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"{_named('--api-url')}: give an http(s):// URL")
        problem = url_credentials_problem(args.api_url)
        if problem:
            raise ConfigError(f"{_named('--api-url')}: {problem}")
        return _checked(Credentials(args.api_url.rstrip("/"), bearer), _named(source))
    sources: list[tuple[str, Callable[[], str | None]]] = [
        (_named("--access-token"), lambda: args.access_token),
        (
            _named("--access-token-file"),
            lambda: (
                read_secret(args.access_token_file, "--access-token-file")
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
                credentials = decode_token(token)
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc} (from {source}); copy the token again from Requence"
                ) from None
            return _checked(credentials, source)
    raise ConfigError(_NO_CREDENTIALS)
