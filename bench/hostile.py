"""Hostile inputs against the real exporter process: `python -m bench.hostile [CASE ...]`.

Cases: `restore` (a state file of 850,000 tasks with --max-tracked-tasks 1000; `restore-compact`
the same file on one line), `bomb` (a gzip
body of 1 GiB of blank lines), `auth` (basic auth timing by user cost, and a flood of wrong
passwords ahead of a valid scrape) and `decode` (SSE decoding of 1 MiB and 15 MiB events); the
hostile network peers of `bench.hostile_net` (connections, auth, upstream headers, OTLP). Each
prints one JSON line: peak resident memory, the slowest /healthz answer while it ran, exit codes.
Figures, not pass/fail: the tests assert the behaviour. The hostile data cases are in
`bench/hostile_data.py`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from exporter.requence.sse import SSEDecoder
from exporter.simulator.scripted import Action, Bomb, Event, Gzip, ScriptedServer, Send, Stall

_ADDRESS = re.compile(r"serving metrics on http://([\d.]+):(\d+)/metrics")
ROOT = Path(__file__).resolve().parents[1]


class _Loop:
    """An event loop in a thread, for the upstream server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _Exporter:
    """`python -m exporter run` with its output collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "run", "--listen", "127.0.0.1:0", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=self._limits,  # noqa: PLW1509 - only sets resource limits
        )
        self.lines: list[str] = []
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not self.url and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def _limits(self) -> None:
        """Runs in the child before exec: resource limits of a case."""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = _ADDRESS.search(line)
            if match:
                self.url = f"http://{match.group(1)}:{match.group(2)}"

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def probe_while(self, busy: Callable[[], bool], limit: float = 300.0) -> float:
        """Poll /healthz every 50 ms while `busy()`; return the slowest answer in seconds."""
        slowest = 0.0
        deadline = time.monotonic() + limit
        with httpx.Client(timeout=60.0) as client:
            while busy() and time.monotonic() < deadline:
                start = time.monotonic()
                client.get(self.url + "/healthz")
                slowest = max(slowest, time.monotonic() - start)
                time.sleep(0.05)
        return slowest

    def value(self, name: str) -> float | None:
        for line in httpx.get(self.url + "/metrics", timeout=30).text.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self) -> tuple[int, float]:
        """SIGTERM; the exit code and how long it took."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        return code, time.monotonic() - start


def _refused_url() -> str:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    _KEEP.append(sock)
    return f"http://127.0.0.1:{port}"


_KEEP: list[Any] = []


def restore(tasks: int = 850_000, cap: int = 1000, *, compact: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "exporter.json"
        # The layout the exporter writes (one task per line); `compact` is one line, as a
        # hand-written or older file would be, and is read whole only up to 64 MiB.
        with state.open("w") as out:
            out.write('{"version":1,"saved_at":0,"since":"2026-11-22T09:00:00.000Z",')
            out.write('"position":5,"recent_ids":[],"tracker":{"version":1,')
            out.write('"latest_timestamp":1795341600.0,"finished_ids":[],"tasks":[')
            out.write("" if compact else "\n")
            for i in range(tasks):
                seen = 1795341000.0 + i
                out.write(
                    ("," if i else "")
                    + ("" if compact or not i else "\n")
                    + f'{{"id":"task-{i:08d}-5f0c1e2a-8b3d-4c6e","name":"invoice","root":null,'
                    f'"start":{seen},"incomplete":false,"last_seen":{seen},'
                    f'"attempts":{{"node-fetch":1}},'
                    f'"open":[["node-fetch","service","fetch",1,{seen}]],"finished":[]}}'
                )
            out.write("]}}" if compact else "\n]}}\n")
        size = state.stat().st_size
        exporter = _Exporter(
            ["--state-file", str(state), "--max-tracked-tasks", str(cap),
             "--api-url", _refused_url(), "--bearer-token", "unused"],
            {},
        )  # fmt: skip
        start = time.monotonic()

        def loading() -> bool:
            return httpx.get(exporter.url + "/readyz", timeout=60).status_code != 200

        slowest = exporter.probe_while(loading)
        ready = time.monotonic() - start
        tracked = exporter.value("requence_exporter_tracked_tasks")
        evicted = exporter.value("requence_exporter_evicted_tasks_total")
        peak = exporter.peak_rss_mib()
        code, took = exporter.stop()
    return {
        "case": "restore-compact" if compact else "restore",
        "state_file_mib": round(size / 2**20),
        "ready_after_s": round(ready, 2),
        "slowest_healthz_s": round(slowest, 3),
        "tracked_tasks": tracked,
        "evicted": evicted,
        "peak_rss_mib": round(peak),
        "exit_code": code,
        "sigterm_s": round(took, 2),
    }


def bomb(size: int = 1 << 30) -> dict[str, Any]:
    events = [
        Event("taskStart", {"task_id": f"t{i}", "timestamp": 1795341600000 + i, "name": "x"})
        for i in range(4)
    ]
    loop = _Loop()
    plan: list[Action] = [Gzip(), Send(2), Bomb(size), Send(1), Bomb(size), Send(), Stall(120)]
    server = ScriptedServer(events, [plan], bearer="b")
    loop.run(server.start("127.0.0.1", 0))
    exporter = _Exporter([], {"REQUENCE_ACCESS_TOKEN": server.access_token})
    try:

        def bombing() -> bool:
            return exporter.value("requence_exporter_stream_position") != 3

        slowest = exporter.probe_while(bombing)
        peak = exporter.peak_rss_mib()
        time.sleep(0.5)  # into the second bomb: stop in the middle of it
        code, took = exporter.stop()
    finally:
        loop.run(server.aclose())
        loop.stop()
    return {
        "case": "bomb",
        "inflated_mib": size >> 20,
        "slowest_healthz_s": round(slowest, 3),
        "peak_rss_mib": round(peak),
        "exit_code": code,
        "sigterm_s": round(took, 2),
    }


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def auth() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "web.yml"
        low = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
        high = bcrypt.hashpw(b"pw", bcrypt.gensalt(10)).decode()
        config.write_text(f"basic_auth_users:\n  alice: '{low}'\n  bob: '{high}'\n")
        exporter = _Exporter(
            ["--web.config.file", str(config), "--api-url", _refused_url(),
             "--bearer-token", "unused"],
            {},
        )  # fmt: skip

        def timed(user: str) -> float:
            start = time.monotonic()
            httpx.get(exporter.url + "/metrics", headers=_basic(user, "wrong"), timeout=30)
            return time.monotonic() - start

        alice = statistics.median(timed("alice") for _ in range(10))
        strangers = sorted(timed(f"stranger-{i}") for i in range(20))

        async def flood() -> tuple[float, list[int]]:
            async with httpx.AsyncClient(
                limits=httpx.Limits(max_connections=200), timeout=60
            ) as client:
                wrong = [
                    asyncio.create_task(
                        client.get(exporter.url + "/metrics", headers=_basic("bob", f"g{i}"))
                    )
                    for i in range(100)
                ]
                await asyncio.sleep(0.2)
                start = time.monotonic()
                valid = await client.get(exporter.url + "/metrics", headers=_basic("bob", "pw"))
                took = time.monotonic() - start
                codes = [r.status_code for r in await asyncio.gather(*wrong)]
                assert valid.status_code == 200
                return took, codes

        valid_after, codes = asyncio.run(flood())
        code, _ = exporter.stop()
    return {
        "case": "auth",
        "alice_cost4_median_s": round(alice, 4),
        "strangers_fast_share": sum(t < 3 * alice for t in strangers) / len(strangers),
        "strangers_min_max_s": [round(strangers[0], 4), round(strangers[-1], 4)],
        "valid_scrape_behind_100_wrong_s": round(valid_after, 3),
        "flood_codes": {str(c): codes.count(c) for c in sorted(set(codes))},
        "exit_code": code,
    }


def decode() -> dict[str, Any]:
    result: dict[str, Any] = {"case": "decode"}
    for size in (1 << 20, 15 << 20):
        event = b'event: nodeUpdate\nid: 1\ndata: {"x":"' + b"a" * size + b'"}\n\n'
        stream = event * max(1, (64 << 20) // len(event))
        chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
        decoder = SSEDecoder(16 << 20)
        start = time.perf_counter()
        count = sum(len(decoder.feed(chunk)) for chunk in chunks)
        took = time.perf_counter() - start
        result[f"{size >> 20}MiB_events_mib_per_s"] = round(len(stream) / took / 2**20)
        assert count == len(stream) // len(event)
    return result


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "restore": restore,
    "restore-compact": lambda: restore(compact=True),
    "bomb": bomb,
    "auth": auth,
    "decode": decode,
}


def main() -> None:
    """Run the cases named on the command line (all by default)."""
    from bench.hostile_data import DATA_CASES  # hostile data: times, names, state, load
    from bench.hostile_net import CASES as NETWORK_CASES

    cases = {**CASES, **NETWORK_CASES, **DATA_CASES}
    for name in sys.argv[1:] or list(cases):
        print(json.dumps(cases[name]()), flush=True)


if __name__ == "__main__":
    main()
