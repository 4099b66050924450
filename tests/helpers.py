"""Small helpers the test modules share: a free loopback port, and waiting for a condition."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; else a usual value)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a process told where to listen).

    Taken below the ephemeral range: a port the kernel picked for `bind(0)` is one it may give
    to any outgoing connection (a scrape, a stream) before the process that was told to listen
    there starts, minutes later in a long test.
    """
    low = _ephemeral_low()
    candidates = range(10_000, low) if low > 11_000 else range(0)
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # no range below the ephemeral one: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def wait_until(condition: Callable[[], T], *, what: str, timeout: float = 20.0) -> T:
    """Poll `condition()` until it returns something true, and return that; fail after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
