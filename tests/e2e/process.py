"""Run the real exporter as a separate process, scrape it, and stop it with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
_ADDRESS = re.compile(r"serving metrics on http://([\d.]+):(\d+)/metrics")


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with this checkout's package first on the path; its output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class ExporterProcess:
    """`python -m exporter run ...` with its log captured; a context manager that stops it."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.args = ["run", "--listen", "127.0.0.1:0", *args]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(
            lambda: bool(self.url) or self.proc is None or self.proc.poll() is not None,
            what="the exporter to listen",
        )
        if not self.url:
            raise AssertionError("exporter did not start:\n" + self.log)
        return self

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = _ADDRESS.search(line)
            if match:
                self.url = f"http://{match.group(1)}:{match.group(2)}"

    @property
    def log(self) -> str:
        """Everything the process wrote so far."""
        return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], *, what: str, timeout: float = 20.0) -> None:
        """Poll `condition` until true, failing after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log}")

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        """GET a path of the exporter's HTTP server."""
        return httpx.get(self.url + path, timeout=5.0, **kwargs)  # type: ignore[arg-type]

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """One scrape, as {(sample name, labels): value}."""
        text = self.get("/metrics").text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value from a fresh scrape."""
        return self.samples().get((name, frozenset(labels.items())))

    def wait_position(self, position: int, timeout: float = 20.0) -> None:
        """Wait until the exporter processed the update at `position`."""
        self.wait_for(
            lambda: self.value("requence_exporter_stream_position") == position,
            what=f"position {position}",
            timeout=timeout,
        )

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("exporter did not stop on SIGTERM:\n" + self.log) from None

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
