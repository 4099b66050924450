"""The shared test helpers that other tests rely on for their own soundness."""

from __future__ import annotations

import socket

from tests.helpers import _ephemeral_low, free_port


def test_a_free_port_is_one_no_outgoing_connection_is_given_meanwhile() -> None:
    # A port from the ephemeral range may be taken as the local port of any connection the
    # test makes before the process told to listen there starts.
    low = _ephemeral_low()
    ports = [free_port() for _ in range(20)]
    assert all(port < low for port in ports), (low, ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
