"""Hostile data against the real exporter process: `python -m bench.hostile CASE ...`.

Cases (each prints one JSON line; figures, not pass/fail: the tests assert the behaviour):
`times` (unrenderable and far-future times with --log-failures and a state file, over two
starts), `long-names` (twenty tasks named with 4 MB each), `endless-task` (one task with 600,000
distinct nodes, then a restart from its state file), `old-layout` (a 64 MiB state file in
another layout that parses to gigabytes), `load` (100,000 tracked tasks, a checkpoint every
second and 16 MiB events of short lines: the event loop's lag and /healthz latency) and
`fifo-mark` (a FIFO planted as the scrape mark).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.hostile import _Exporter, _Loop, _refused_url
from exporter.simulator.protocol import sse_event
from exporter.simulator.scripted import Action, Event, Raw, ScriptedServer, Send, Stall

T0 = 1795341600000  # 2026-11-22T10:00:00Z in epoch milliseconds


def _update(kind: str, task: str, offset_ms: int, **extra: Any) -> dict[str, Any]:
    return {"task_id": task, "timestamp": T0 + offset_ms, "updateId": f"{task}-{kind}", **extra}


class _Upstream:
    """A scripted watch-all server on its own loop, and the exporter's environment for it."""

    def __init__(self, events: list[Event], plan: list[Action]) -> None:
        self.loop = _Loop()
        self.server = ScriptedServer(events, [plan], fallback=[Stall(600)], bearer="b")
        self.loop.run(self.server.start("127.0.0.1", 0))
        self.env = {"REQUENCE_ACCESS_TOKEN": self.server.access_token}

    def close(self) -> None:
        self.loop.run(self.server.aclose())
        self.loop.stop()


def _wait(condition: Callable[[], bool], limit: float = 300.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _position(exporter: _Exporter) -> float | None:
    """The stream position, from /status: polling /metrics would measure its rendering."""
    try:
        position = httpx.get(exporter.url + "/status", timeout=60).json()["position"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return None if position is None else float(position)


def _scrape(exporter: _Exporter) -> tuple[float, int]:
    start = time.monotonic()
    size = len(httpx.get(exporter.url + "/metrics", timeout=120).content)
    return time.monotonic() - start, size


def _mib(size: float) -> float:
    return round(size / 2**20, 3)


def times() -> dict[str, Any]:
    hostile = [
        ("taskError", "9999-12-31T23:59:59-14:00"),
        ("taskAborted", "0001-01-01T00:00:00+14:00"),
        ("taskError", 253402300799000),
    ]
    events = [Event("taskStart", _update("taskStart", f"t{i}", i)) for i in range(50)]
    for i, (kind, stamp) in enumerate(hostile):
        events.append(Event(kind, {**_update(kind, f"h{i}", 0), "timestamp": stamp, "reason": "x"}))
    events += [Event("taskStart", _update("taskStart", "late", 1000))]
    result: dict[str, Any] = {"case": "times"}
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        for run in ("first", "restart"):
            result[run] = _times_run(state, events)
    return result


def _times_run(state: Path, events: list[Event]) -> dict[str, Any]:
    upstream = _Upstream(events, [Send(), Stall(600)])
    exporter = _Exporter(["--state-file", str(state), "--log-failures"], upstream.env)
    try:
        _wait(lambda: exporter.proc.poll() is not None or _position(exporter) == len(events), 60)
        alive = exporter.proc.poll() is None
        pages = [
            httpx.get(exporter.url + p, timeout=10).status_code if alive else None
            for p in ("/", "/failures")
        ]
        tracked = exporter.value("requence_exporter_tracked_tasks") if alive else None
        code = exporter.stop()[0] if alive else exporter.proc.wait(10)
    finally:
        upstream.close()
    return {"alive": alive, "pages": pages, "tracked": tracked, "exit": code}


def long_names(tasks: int = 20, size: int = 4_000_000) -> dict[str, Any]:
    events = [
        Event("taskStart", _update("taskStart", f"t{i}", i, name=f"{i:02d}" + "n" * size))
        for i in range(tasks)
    ]
    upstream = _Upstream(events, [Send(), Stall(600)])
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        args = ["--state-file", str(state), "--checkpoint-interval", "1s"]
        exporter = _Exporter(args, upstream.env)
        try:
            _wait(lambda: _position(exporter) == tasks)
            _wait(lambda: state.exists() and b'"position":20' in state.read_bytes()[:4096], 30)
            rest = _rss_mib(exporter)
            took, size_bytes = _scrape(exporter)
            peak = exporter.peak_rss_mib()
            state_size = state.stat().st_size
            code, _ = exporter.stop()
        finally:
            upstream.close()
    return {
        "case": "long-names",
        "names": f"{tasks} x {size / 1e6:.0f} MB",
        "rss_at_rest_mib": rest,
        "metrics_mib": _mib(size_bytes),
        "metrics_s": round(took, 2),
        "peak_rss_mib": round(peak),
        "state_file_mib": _mib(state_size),
        "exit_code": code,
    }


def _rss_mib(exporter: _Exporter) -> float:
    for line in Path(f"/proc/{exporter.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024)
    return float("nan")


def endless_task(nodes: int = 600_000) -> dict[str, Any]:
    def starts() -> Iterator[bytes]:
        yield sse_event("taskStart", 1, orjson.dumps(_update("taskStart", "endless", 0)))
        for i in range(nodes):
            node = {"id": f"node-{i:07d}-5f0c1e2a-8b3d-4c6e-9f70", "type": "service", "alias": None}
            data = _update("nodeStart", "endless", i, node=node)
            data["updateId"] = f"u{i}"
            yield sse_event("nodeStart", i + 2, orjson.dumps(data))

    raw = b"".join(starts())
    result: dict[str, Any] = {"case": "endless-task", "distinct_nodes": nodes}
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        args = ["--state-file", str(state), "--checkpoint-interval", "1h"]
        upstream = _Upstream([], [Raw(raw), Stall(600)])
        exporter = _Exporter(args, upstream.env)
        try:
            _wait(lambda: _position(exporter) == nodes + 1)
            scrapes = [_scrape(exporter)[0] for _ in range(3)]
            result["rss_mib"] = _rss_mib(exporter)
            result["scrape_s"] = round(statistics.median(scrapes), 3)
            result["exit_code"] = exporter.stop()[0]
        finally:
            upstream.close()
        result["state_file_mib"] = _mib(state.stat().st_size)
        upstream = _Upstream([], [Stall(600)])
        restarted = _Exporter(["--state-file", str(state)], upstream.env)
        try:
            _wait(lambda: httpx.get(restarted.url + "/readyz", timeout=60).status_code == 200)
            result["restored_peak_rss_mib"] = round(restarted.peak_rss_mib())
            restarted.stop()
        finally:
            upstream.close()
    return result


def old_layout(size: int = 64 << 20) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        with state.open("wb") as out:  # one line: a hand-written or 0.1.0 file
            head = b'{"version":1,"saved_at":0,"since":"2026-11-22T09:00:00.000Z","position":5,'
            out.write(head + b'"recent_ids":[],"tracker":{"version":1,"latest_timestamp":0,')
            out.write(b'"finished_ids":[],"tasks":[],"junk":[')
            out.write(b"[]," * ((size - 300) // 3) + b"[]]}}")
        file_mib = _mib(state.stat().st_size)
        args = ["--state-file", str(state), "--api-url", _refused_url(), "--bearer-token", "b"]
        exporter = _Exporter(args, {})
        start = time.monotonic()

        def loading() -> bool:
            return httpx.get(exporter.url + "/readyz", timeout=120).status_code != 200

        slowest = exporter.probe_while(loading)
        ready = time.monotonic() - start
        peak = exporter.peak_rss_mib()
        code, _ = exporter.stop()
        aside = sorted(p.name.split("-")[0] for p in Path(directory).glob("state.json.*"))
    return {
        "case": "old-layout",
        "state_file_mib": file_mib,
        "ready_after_s": round(ready, 2),
        "slowest_healthz_s": round(slowest, 3),
        "peak_rss_mib": round(peak),
        "set_aside_as": aside,
        "exit_code": code,
    }


def load(tasks: int = 100_000, big_events: int = 6) -> dict[str, Any]:
    events = []
    for i in range(tasks):
        events.append(Event("taskStart", _update("taskStart", f"t{i:06d}", i, name="invoice")))
        node = {"id": "node-fetch", "type": "service", "alias": "fetch"}
        events.append(Event("nodeStart", _update("nodeStart", f"t{i:06d}", i, node=node)))
    line = b"data: x\n"
    big = b"event: nodeUpdate\nid: %d\n" + line * ((16 << 20) // len(line) - 8) + b"\n"
    plan: list[Action] = [Send()]
    for k in range(big_events):
        plan += [Stall(2.0), Raw(big % (2 * tasks + 1 + k))]
    plan.append(Stall(600))
    upstream = _Upstream(events, plan)
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        args = ["--state-file", str(state), "--checkpoint-interval", "1s"]
        exporter = _Exporter(args, upstream.env)
        try:
            _wait(lambda: _position(exporter) == 2 * tasks)
            # The loop's lag while the checkpoints and the large events run (not the start).
            before = _buckets(httpx.get(exporter.url + "/metrics", timeout=60).text, LOOP_LAG)
            latencies = _probes(exporter, lambda: _position(exporter) != 2 * tasks + big_events)
            after = _buckets(httpx.get(exporter.url + "/metrics", timeout=60).text, LOOP_LAG)
            peak = exporter.peak_rss_mib()
            code, _ = exporter.stop()
        finally:
            upstream.close()
    latencies.sort()
    return {
        "case": "load",
        "tracked_tasks": tasks,
        "events_16mib": big_events,
        "healthz_p99_s": round(latencies[int(len(latencies) * 0.99)], 3),
        "healthz_max_s": round(latencies[-1], 3),
        "probes": len(latencies),
        "loop_lag_p99_le_s": _p99_bucket(
            [(b, n - m) for (b, n), (_, m) in zip(after, before, strict=True)]
        ),
        "peak_rss_mib": round(peak),
        "exit_code": code,
    }


def _probes(exporter: _Exporter, busy: Callable[[], bool], limit: float = 300.0) -> list[float]:
    """Every /healthz answer's latency while `busy()`: asked every 50 ms from a thread of their
    own, as kubelet would, so a blocked `busy()` check cannot thin them out."""
    out: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60.0) as client:
            while not done.is_set():
                start = time.monotonic()
                client.get(exporter.url + "/healthz")
                out.append(time.monotonic() - start)
                done.wait(0.05)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    _wait(lambda: not busy(), limit)
    done.set()
    thread.join(60)
    return out or [float("nan")]


LOOP_LAG = "requence_exporter_event_loop_lag_seconds"


def _buckets(text: str, name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets in an exposition: (upper bound, count)."""
    buckets = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    return buckets


def _p99_bucket(buckets: list[tuple[float, float]]) -> float | str | None:
    """The upper bound of the bucket the 99th percentile falls in."""
    if not buckets or not buckets[-1][1]:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= 0.99 * total:
            return bound if bound != float("inf") else "+Inf"
    return None


def fifo_mark() -> dict[str, Any]:
    upstream = _Upstream([Event("taskStart", _update("taskStart", "t", 0))], [Send(), Stall(600)])
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state.json"
        os.mkfifo(Path(directory) / "state.json.scraped")
        exporter = _Exporter(["--state-file", str(state)], upstream.env)
        try:
            start = time.monotonic()
            try:
                httpx.get(exporter.url + "/metrics", timeout=10)
                httpx.get(exporter.url + "/metrics", timeout=10)
                scraped = round(time.monotonic() - start, 3)
            except httpx.TimeoutException:
                scraped = None
            exporter.proc.send_signal(15)
            try:
                code: int | None = exporter.proc.wait(15)
            except subprocess.TimeoutExpired:  # frozen: that is the finding
                exporter.proc.kill()
                code = None
        finally:
            upstream.close()
    return {"case": "fifo-mark", "two_scrapes_s": scraped, "exit_code_on_sigterm": code}


DATA_CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "times": times,
    "long-names": long_names,
    "endless-task": endless_task,
    "old-layout": old_layout,
    "load": load,
    "fifo-mark": fifo_mark,
}
