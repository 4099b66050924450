"""Requence access tokens: encode and decode the `api`, bearer token and API URL triple."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from exporter.core.errors import TokenError

__all__ = [
    "ALPHABET",
    "SEPARATOR",
    "Credentials",
    "decode_token",
    "encode_token",
    "url_credentials_problem",
]

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-$"
SEPARATOR = "\uf6ee"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


class Credentials(NamedTuple):
    """Where to connect and how to authenticate. `repr` hides the bearer token."""

    api_url: str
    bearer_token: str

    def __repr__(self) -> str:
        return f"Credentials(api_url={self.api_url!r}, bearer_token='***')"


def url_credentials_problem(url: str) -> str | None:
    """Why `url` may not be used because it carries a user or password (never quoting them)."""
    if "@" not in urlsplit(url).netloc:
        return None
    # httpx would send them as Basic auth in place of the bearer token, and logs would show them.
    return (
        "the API URL carries a user name or password (user:password@host); remove them: "
        "the exporter authenticates with the bearer token only"
    )


def encode_token(bearer_token: str, api_url: str) -> str:
    """Build an access token the way Requence does (used by the simulator and tests)."""
    text = SEPARATOR.join(("api", bearer_token, api_url))
    bits = "".join(format(ord(ch), "016b") for ch in text)
    padding = (-len(bits)) % 6
    bits += "0" * padding
    body = "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))
    return f"{body}{padding}"


def decode_token(token: str) -> Credentials:
    """Decode an access token; raise `TokenError` (never quoting the token) when it is malformed."""
    token = token.strip()
    if len(token) < 2 or not token[-1].isdigit():
        raise TokenError("the access token is malformed (it should end with a padding digit)")
    padding = int(token[-1])
    try:
        bits = "".join(format(_INDEX[ch], "06b") for ch in token[:-1])
    except KeyError:
        raise TokenError("the access token has characters no Requence token has") from None
    if padding > 5 or padding > len(bits):
        raise TokenError("the access token is malformed (bad padding digit)")
    bits = bits[: len(bits) - padding]
    if len(bits) % 16:
        raise TokenError("the access token is malformed (truncated)")
    text = "".join(chr(int(bits[i : i + 16], 2)) for i in range(0, len(bits), 16))
    parts = text.split(SEPARATOR)
    if len(parts) < 3 or parts[0] != "api":
        raise TokenError("the access token is not a Requence API token (wrong kind or truncated)")
    bearer, api_url = parts[1], parts[2]
    if not bearer or not api_url.startswith(("http://", "https://")):
        raise TokenError("the access token does not carry a bearer token and an http(s) API URL")
    problem = url_credentials_problem(api_url)
    if problem:
        raise TokenError(problem)
    return Credentials(api_url=api_url.rstrip("/"), bearer_token=bearer)
