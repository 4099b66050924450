"""The benchmark's servers, each in a process of its own, stopped on leaving the block:
the loopback feed of a pre-rendered stream (with the discarding OTLP endpoint), and the
simulator at a steady rate."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.render import Rendered

__all__ = ["BEARER", "loopback", "simulator"]

BEARER = "bench"  # the simulator is started with this bearer token


@contextmanager
def loopback(stream: Rendered, cwd: Path) -> Iterator[tuple[int, int]]:
    """Serve `stream` in both framings (`bench.loopback`); yields (feed port, OTLP port)."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "coalesced.bin").write_bytes(stream.coalesced)
        Path(folder, "per_event.bin").write_bytes(stream.per_event)
        servers = subprocess.Popen(
            [sys.executable, "-m", "bench.loopback", folder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        try:
            assert servers.stdout is not None
            feed_port, otlp_port = map(int, servers.stdout.readline().split())
            yield feed_port, otlp_port
        finally:
            assert servers.stdin is not None
            servers.stdin.close()
            servers.wait(10)


@contextmanager
def simulator(rate: float, cwd: Path) -> Iterator[str]:
    """The simulator (seed 7) at `rate` updates a second; yields its base URL."""
    command = ["-m", "exporter.simulator", "--seed", "7", "--rate", f"{rate:g}"]
    process = subprocess.Popen(
        [sys.executable, *command, "--bearer", BEARER],
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().split()[-1]
    finally:
        process.terminate()
        process.wait(10)
