"""Values bound for HTTP headers are checked unquoted; failures are told without them."""

from __future__ import annotations

import errno
import ssl

import httpx
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.headers import header_value_problem, transport_failure

SECRET = "Bearer 5ecret-c0ffee"


@given(st.text(max_size=40))
def test_only_visible_ascii_passes_and_problems_never_quote_the_value(value: str) -> None:
    problem = header_value_problem(value)
    visible = bool(value) and all("!" <= c <= "~" for c in value)
    assert (problem is None) == visible
    if problem is not None and len(value) >= 4:
        assert value not in problem


def test_inner_spaces_are_allowed_only_between_visible_characters() -> None:
    assert header_value_problem("Bearer abc", inner_spaces=True) is None
    assert header_value_problem("Bearer abc") is not None
    assert header_value_problem(" abc", inner_spaces=True) is not None
    assert "line break" in (header_value_problem("a\nb", inner_spaces=True) or "")


def test_transport_failures_are_told_without_their_message() -> None:
    echoed = httpx.RemoteProtocolError(f"illegal header line: b'X-Echo: {SECRET}\\x01'")
    assert transport_failure(echoed) == ("RemoteProtocolError: the server broke the HTTP protocol")
    refused = httpx.ConnectError(f"cannot connect for {SECRET}")
    refused.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert transport_failure(refused) == "ConnectError: Connection refused"
    tls = httpx.ConnectError(SECRET)
    tls.__cause__ = ssl.SSLCertVerificationError(1, f"certificate verify failed {SECRET}")
    tls.__cause__.reason = "CERTIFICATE_VERIFY_FAILED"
    assert transport_failure(tls) == "ConnectError: TLS failed (CERTIFICATE_VERIFY_FAILED)"
    assert SECRET not in transport_failure(ValueError(SECRET))
