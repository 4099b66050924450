"""Hostile network peers against the real exporter process (cases of `python -m bench.hostile`).

Clients that hold connections (`partial-headers`, `slowloris` at a low `nofile`, `non-reading`
/metrics clients), a wrong-password flood against a fresh process (`auth-flood`), an upstream
that dribbles its response headers (`dribble-headers`) and OTLP collectors that hang, answer
slowly, fail with junk `Retry-After` values or send an endless body (`otlp-hung`, `otlp-slow`,
`otlp-flaky`, `otlp-endless`). Each prints one JSON line: peak resident memory, the slowest
`/healthz` answer (and failed probes) while it ran, and what the attack achieved.
Attackers connect from 127.0.0.2 and up, the probe from 127.0.0.1, as a pod and a kubelet would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from bench.hostile import ROOT, _Exporter, _Loop, _refused_url

ATTACKERS = 100  # source addresses 127.0.0.2 ... 127.0.0.101


def _attacker(i: int) -> tuple[str, int]:
    return (f"127.0.0.{2 + i % ATTACKERS}", 0)


def _rss_mib(pid: int, field: str = "VmHWM:") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


class _Probe:
    """GET /healthz from 127.0.0.1 every `every` seconds in a thread; slowest answer, failures."""

    def __init__(self, url: str, every: float = 0.1, timeout: float = 5.0) -> None:
        self.url = url
        self.every = every
        self.timeout = timeout
        self.times: list[float] = []
        self.failures = 0
        self.unhealthy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                with httpx.Client(timeout=self.timeout) as client:  # a new connection each time
                    if client.get(self.url + "/healthz").status_code != 200:
                        self.unhealthy += 1
            except httpx.HTTPError:
                self.failures += 1
            self.times.append(time.monotonic() - start)
            self._stop.wait(self.every)

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def figures(self) -> dict[str, Any]:
        return {
            "probes": len(self.times),
            "slowest_healthz_s": round(max(self.times, default=0.0), 3),
            "failed_probes": self.failures,
            "unhealthy_probes": self.unhealthy,
        }


class _NetExporter(_Exporter):
    """The exporter process, optionally with a lower `nofile` limit; counts what it logs."""

    def __init__(self, args: list[str], env: dict[str, str], nofile: int | None = None) -> None:
        self._nofile = nofile
        super().__init__(args, env)

    def _limits(self) -> None:
        if self._nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self._nofile, self._nofile))

    @property
    def log_bytes(self) -> int:
        return sum(len(line) for line in self.lines)

    @property
    def tracebacks(self) -> int:
        return sum(line.startswith("Traceback") for line in self.lines)


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _plain_exporter(extra: list[str] | None = None, nofile: int | None = None) -> _NetExporter:
    args = ["--api-url", _refused_url(), "--bearer-token", "unused", *(extra or [])]
    return _NetExporter(args, {}, nofile)


async def _open(host: str, port: int, i: int) -> socket.socket | None:
    """A non-blocking connected socket from attacker address `i`, or None if refused."""
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind(_attacker(i))
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError:
        sock.close()
        return None
    return sock


def _still_open(sock: socket.socket) -> bool:
    """Whether the server still holds the connection: what it sent is read and dropped."""
    try:
        while sock.recv(1 << 20, socket.MSG_DONTWAIT):
            pass
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def partial_headers(connections: int = 8000, size: int = 60_000, hold: float = 8.0) -> dict:
    """`connections` clients each send `size` bytes of an unfinished request head and wait."""
    exporter = _plain_exporter()
    host, port = _host_port(exporter.url)
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * size

    async def attack() -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        async def one(i: int) -> socket.socket | None:
            sock = await _open(host, port, i)
            if sock is not None:
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(loop.sock_sendall(sock, head), 2.0)
            return sock

        socks: list[socket.socket] = []
        for start in range(0, connections, 1000):
            batch = await asyncio.gather(*(one(i) for i in range(start, start + 1000)))
            socks += [sock for sock in batch if sock is not None]
        opened = time.monotonic()
        await asyncio.sleep(hold)
        held = sum(_still_open(s) for s in socks)
        for sock in socks:
            sock.close()
        return {
            "connected": len(socks),
            "held_after_s": hold,
            "still_open": held,
            "opened_in_s": round(opened - begin, 1),
        }

    with _Probe(exporter.url) as probe:
        begin = time.monotonic()
        result = asyncio.run(attack())
    peak = exporter.peak_rss_mib()
    code, _ = exporter.stop()
    return {
        "case": "partial-headers",
        **result,
        **probe.figures(),
        "peak_rss_mib": round(peak),
        "exit_code": code,
    }


def slowloris(connections: int = 1100, nofile: int = 1024, seconds: float = 30.0) -> dict:
    """At `nofile` open files, `connections` clients trickle a request head a byte at a time."""
    exporter = _plain_exporter(nofile=nofile)
    host, port = _host_port(exporter.url)
    logged_before = exporter.log_bytes

    async def attack() -> int:
        loop = asyncio.get_running_loop()
        end = time.monotonic() + seconds
        opened = 0

        async def one(i: int) -> None:
            nonlocal opened
            while time.monotonic() < end:
                sock = await _open(host, port, i)
                if sock is None:
                    await asyncio.sleep(0.5)
                    continue
                opened += 1
                try:
                    for byte in b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-a: b\r\n" * 1000:
                        await loop.sock_sendall(sock, bytes([byte]))
                        await asyncio.sleep(1.0)
                        if time.monotonic() >= end:
                            break
                except OSError:
                    pass
                finally:
                    sock.close()

        await asyncio.gather(*(one(i) for i in range(connections)))
        return opened

    with _Probe(exporter.url) as probe:
        opened = asyncio.run(attack())
    peak = exporter.peak_rss_mib()
    code, _ = exporter.stop()
    return {
        "case": "slowloris",
        "nofile": nofile,
        "connections": connections,
        "seconds": seconds,
        "attack_connections_opened": opened,
        **probe.figures(),
        "log_bytes": exporter.log_bytes - logged_before,
        "tracebacks": exporter.tracebacks,
        "peak_rss_mib": round(peak),
        "exit_code": code,
    }


def _big_metrics_upstream() -> tuple[subprocess.Popen[str], str]:
    """A simulator with many task names, so /metrics is large."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "simulate", "--listen", "127.0.0.1:0", "--rate", "3000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    token = ""
    for line in proc.stdout:
        if line.startswith("REQUENCE_ACCESS_TOKEN="):
            token = line.strip().split("=", 1)[1]
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return proc, token


def _many_series() -> list[Any]:
    """Finished tasks of 1,000 names with a node each: a /metrics page larger than a socket
    buffer (4 MiB on Linux), as a large account's is."""
    from exporter.simulator.scripted import Event

    events = []
    for i in range(3000):
        task, name, t = f"task-{i}", f"workflow-{i % 1000:04d}", 1795341600000 + i * 10
        base = {"task_id": task, "name": name, "rootTaskId": None}
        events.append(Event("taskStart", {**base, "timestamp": t}))
        for n in range(1):
            node = {"id": f"node-{i % 1000}-{n}", "type": "service", "alias": f"step-{n}"}
            events.append(Event("nodeStart", {**base, "timestamp": t + 1, "node": node}))
            events.append(Event("nodeEnd", {**base, "timestamp": t + 2 + n, "node": node}))
        events.append(Event("taskEnd", {**base, "timestamp": t + 5}))
    return events


def non_reading(clients: int = 400, hold: float = 20.0) -> dict:
    """`clients` ask for /metrics and never read the answer."""
    from exporter.simulator.scripted import ScriptedServer, Send, Stall

    loop = _Loop()
    server = ScriptedServer(_many_series(), [[Send(per_write=500), Stall(600)]], bearer="b")
    loop.run(server.start("127.0.0.1", 0))
    exporter = _NetExporter([], {"REQUENCE_ACCESS_TOKEN": server.access_token})
    try:
        for _ in range(600):
            if exporter.value("requence_exporter_stream_position") == len(server.positions):
                break
            time.sleep(0.1)
        page = len(httpx.get(exporter.url + "/metrics", timeout=30).content)
        host, port = _host_port(exporter.url)
        rss_before = _rss_mib(exporter.proc.pid, "VmRSS:")

        async def attack() -> dict[str, Any]:
            socks = []
            for i in range(clients):
                sock = await _open(host, port, i)
                if sock is None:
                    continue
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                await asyncio.get_running_loop().sock_sendall(
                    sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                socks.append(sock)
            await asyncio.sleep(2)
            rss_loaded = _rss_mib(exporter.proc.pid, "VmRSS:")
            await asyncio.sleep(hold)
            rss_held = _rss_mib(exporter.proc.pid, "VmRSS:")
            still = sum(_still_open(s) for s in socks)
            for sock in socks:
                sock.close()
            return {
                "connected": len(socks),
                "rss_2s_mib": round(rss_loaded),
                f"rss_{hold:g}s_mib": round(rss_held),
                f"still_open_{hold:g}s": still,
            }

        with _Probe(exporter.url) as probe:
            result = asyncio.run(attack())
        peak = exporter.peak_rss_mib()
        code, _ = exporter.stop()
    finally:
        loop.run(server.aclose())
        loop.stop()
    return {
        "case": "non-reading",
        "metrics_page_kib": page >> 10,
        "rss_before_mib": round(rss_before),
        **result,
        **probe.figures(),
        "peak_rss_mib": round(peak),
        "exit_code": code,
    }


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def auth_flood(valid_scrapes: int = 44, flood: int = 100, warmup: float = 5.0) -> dict:
    """A fresh process (nothing verified yet): `flood` addresses guessing a new password at
    every request, and, from `warmup` seconds in, valid scrapes from another address every
    0.25 s."""
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "web.yml"
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(10)).decode()
        config.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        exporter = _plain_exporter(["--web.config.file", str(config)])

        async def run() -> dict[str, Any]:
            stop = asyncio.Event()
            codes: dict[int, int] = {}

            async def wrong(i: int) -> None:
                transport = httpx.AsyncHTTPTransport(local_address=_attacker(i)[0])
                async with httpx.AsyncClient(transport=transport, timeout=60) as client:
                    n = 0
                    while not stop.is_set():
                        n += 1  # a new guess each time: none is answered from memory
                        guess = _basic("prometheus", f"g{i}-{n}")
                        try:
                            r = await client.get(exporter.url + "/metrics", headers=guess)
                            codes[r.status_code] = codes.get(r.status_code, 0) + 1
                        except httpx.HTTPError:
                            codes[0] = codes.get(0, 0) + 1

            flooders = [asyncio.create_task(wrong(i)) for i in range(flood)]
            await asyncio.sleep(warmup)
            valid: list[int] = []
            slowest = 0.0
            last_refused = None
            began = time.monotonic()
            async with httpx.AsyncClient(timeout=10) as client:  # a scrape timeout
                for _ in range(valid_scrapes):
                    start = time.monotonic()
                    try:
                        r = await client.get(
                            exporter.url + "/metrics", headers=_basic("prometheus", "pw")
                        )
                        code = r.status_code
                    except httpx.TimeoutException:
                        code = 0  # gave up, as Prometheus does after its scrape timeout
                    slowest = max(slowest, time.monotonic() - start)
                    valid.append(code)
                    if code != 200:
                        last_refused = round(time.monotonic() - began, 1)
                    await asyncio.sleep(0.25)
            stop.set()
            await asyncio.gather(*flooders, return_exceptions=True)
            return {
                "valid_ok": valid.count(200),
                "valid_scrapes": len(valid),
                "valid_codes": {str(c): valid.count(c) for c in sorted(set(valid))},
                "slowest_valid_s": round(slowest, 3),
                "last_valid_refused_after_s": last_refused,
                "flood_codes": {str(c): n for c, n in sorted(codes.items())},
            }

        with _Probe(exporter.url) as probe:
            result = asyncio.run(run())
        code, _ = exporter.stop()
    return {"case": "auth-flood", **result, **probe.figures(), "exit_code": code}


class _RawServer:
    """A TCP server on 127.0.0.1 in a thread, answering each connection with `serve(sock)`."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._serve = serve
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            self._serve(conn)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def dribble_headers(read_timeout: str = "5s", seconds: float = 40.0, every: float = 0.5) -> dict:
    """The upstream answers with a status line, then one header byte every `every` seconds."""

    def dribble(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Slow: " + b"a" * 100_000:
            conn.sendall(bytes([byte]))
            time.sleep(every)

    server = _RawServer(dribble)
    args = [
        "--api-url",
        f"http://127.0.0.1:{server.port}",
        "--bearer-token",
        "b",
        "--read-timeout",
        read_timeout,
    ]
    exporter = _NetExporter(args, {})
    first_reconnect = None
    start = time.monotonic()
    with _Probe(exporter.url, every=0.5) as probe:
        while time.monotonic() - start < seconds:
            status = httpx.get(exporter.url + "/status", timeout=10).json()
            if first_reconnect is None and sum(status["reconnects"].values()):
                first_reconnect = time.monotonic() - start
            time.sleep(0.5)
    status = httpx.get(exporter.url + "/status", timeout=10).json()
    code, _ = exporter.stop()
    server.close()
    return {
        "case": "dribble-headers",
        "read_timeout": read_timeout,
        "seconds": seconds,
        "first_reconnect_after_s": None if first_reconnect is None else round(first_reconnect, 1),
        "reconnects": status["reconnects"],
        "upstream_connections": server.connections,
        **probe.figures(),
        "exit_code": code,
    }


def _collector(mode: str) -> _RawServer:
    def serve(conn: socket.socket) -> None:
        answered = 0
        while True:
            head = _read_head(conn)
            if not head:
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += conn.recv(65536)
            answered += 1
            if mode == "hung":
                time.sleep(3600)
            elif mode == "slow":
                time.sleep(4)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            elif mode == "flaky":
                if answered % 2:
                    # Retry-After: "²" in UTF-8, which str.isdigit() takes for a digit.
                    junk = b"HTTP/1.1 503 Unavailable\r\nRetry-After: \xc2\xb2\r\n"
                    conn.sendall(junk + b"Content-Length: 0\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            else:  # endless
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n")
                while True:
                    conn.sendall(b"\0" * 65536)

    return _RawServer(serve)


def otlp(mode: str, seconds: float = 30.0) -> dict:
    """Traces on, to a collector that is `hung`, `slow`, `flaky` or sends an `endless` body."""
    upstream, token = _big_metrics_upstream()
    collector = _collector(mode)
    env = {
        "REQUENCE_ACCESS_TOKEN": token,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    exporter = _NetExporter([], env)
    try:
        children = _children(exporter.proc.pid)
        with _Probe(exporter.url) as probe:
            time.sleep(seconds)
        samples = httpx.get(exporter.url + "/metrics", timeout=30).text
        spans = {
            name: float(line.rsplit(" ", 1)[1])
            for line in samples.splitlines()
            for name in (
                "requence_exporter_spans_exported_total",
                "requence_exporter_spans_dropped_total",
            )
            if line.startswith(name + " ")
        }
        span_peak = max((_rss_mib(c) for c in children), default=float("nan"))
        peak = exporter.peak_rss_mib()
        code, took = exporter.stop()
    finally:
        upstream.terminate()
        upstream.wait(10)
        collector.close()
    return {
        "case": f"otlp-{mode}",
        "seconds": seconds,
        **probe.figures(),
        "exported": spans.get("requence_exporter_spans_exported_total"),
        "dropped": spans.get("requence_exporter_spans_dropped_total"),
        "peak_rss_mib": round(peak),
        "span_process_peak_rss_mib": round(span_peak),
        "collector_connections": collector.connections,
        "tracebacks": exporter.tracebacks,
        "exit_code": code,
        "sigterm_s": round(took, 2),
    }


def _cases() -> Iterator[tuple[str, Callable[[], dict[str, Any]]]]:
    yield "partial-headers", partial_headers
    yield "slowloris", slowloris
    yield "non-reading", non_reading
    yield "auth-flood", auth_flood
    yield "dribble-headers", dribble_headers
    for mode in ("hung", "slow", "flaky", "endless"):
        yield f"otlp-{mode}", lambda mode=mode: otlp(mode)  # type: ignore[misc]


CASES: dict[str, Callable[[], dict[str, Any]]] = dict(_cases())
