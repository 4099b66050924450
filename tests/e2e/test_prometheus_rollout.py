"""The dashboards' numbers through a restart, a replaced exporter and two shards.

A real Prometheus scrapes two shards (`--shard 0/2`, `--shard 1/2`) of one stream, every
second, with the rules loaded. Mid-stream shard 0 restarts in place (same address, so the same
instance) and shard 1 is replaced by a process on another address (a new instance, as a
rolling update replaces a pod), both resuming from their state files. The panels' own
queries must then give the true counts of the scripted stream: errors per task name and node,
outcomes, skips counted once although every shard reads them, only live instances on the
per-instance tiles, and no made-up update age.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from exporter.simulator.scripted import Event, ScriptedServer, Send, Stall
from tests.e2e.process import ExporterProcess
from tests.e2e.prometheus import (
    DASHBOARDS,
    JOB,
    http_get,
    instant_query,
    start_prometheus,
    stop,
    substitute,
    variable_values,
)
from tests.e2e.servers import LoopThread, serve
from tests.helpers import free_port

pytestmark = pytest.mark.slow

TASKS_PER_WAVE = 10
WAVES = 8  # odd waves start tasks, even waves finish them; each ends with one malformed event
WAVE = 2 * TASKS_PER_WAVE + 1  # events per wave
PAUSE_S = 2.5  # between waves: more than two scrapes, so each new series is seen at zero first
# Before a connection's first wave: a process is scraped (at zero) before its first update.
# (With real 15 s scrapes a new process usually counts updates before its first scrape, and
# rate() cannot see those: the pause makes what the test checks well defined.)
FIRST_PAUSE_S = 8.0
NAMES = ("invoice", "ocr")
NODES = {"invoice": "fetch", "ocr": "scan"}
RESTART_AFTER = 3  # waves shard 0 processes before it restarts in place
REPLACE_AFTER = 5  # waves shard 1 processes before another instance takes over
SCRAPES_S = 4.0  # after the last update: enough scrapes and rule evaluations to see it
TIMEOUT_S = 60.0


def _script(base: float) -> tuple[list[Event], dict[str, Counter[Any]]]:
    """The stream, and the truth: what each counter must sum to."""
    events: list[Event] = []
    truth: dict[str, Counter[Any]] = {k: Counter() for k in ("task", "node", "outcome", "other")}

    def add(kind: str, task: int, **extra: object) -> None:
        name = NAMES[task % 2]
        stamp = datetime.fromtimestamp(base + len(events) * 0.01, UTC)
        data = {
            "task_id": f"7a1d0c3e-2b4f-4c6d-8e9f-{task:012d}",
            "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "updateId": f"u-{len(events)}",
            "name": name,
            "rootTaskId": None,
            **extra,
        }
        events.append(Event(kind, data))
        truth["other"]["updates"] += 1

    for wave in range(WAVES):
        first = (wave // 2) * TASKS_PER_WAVE
        for task in range(first, first + TASKS_PER_WAVE):
            name = NAMES[task % 2]
            node = {"id": f"node-{NODES[name]}", "type": "service", "alias": NODES[name]}
            if wave % 2 == 0:
                add("taskStart", task)
                add("nodeStart", task, node=node)
            elif task % 5 == 0:
                add("nodeError", task, node=node, error="failed")
                add("taskError", task, reason="failed")
                truth["task"][name] += 1
                truth["node"][(name, NODES[name])] += 1
                truth["outcome"]["errored"] += 1
            elif task % 5 == 1:
                add("nodeEnd", task, node=node)
                add("taskAborted", task, reason="cancelled")
                truth["outcome"]["aborted"] += 1
            else:
                add("nodeEnd", task, node=node)
                add("taskEnd", task, result={})
                truth["outcome"]["ended"] += 1
        events.append(Event("nodeUpdate", b"{oops"))
        truth["other"]["malformed_json"] += 1
    return events, truth


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def _wait_scraped(
    prometheus: str, instance: str, position: int | None, timeout: float = TIMEOUT_S
) -> None:
    """Wait until Prometheus scraped `instance` at `position` (None: before any update).

    What a process counted after its last scrape is lost with it, so the test stops a
    process only once that is nothing; and a new process must be seen before it counts.
    """
    selector = f'{{instance="{instance}"}}'
    expr = (
        f"requence_exporter_stream_position{selector} == {position}"
        if position is not None
        else f"up{selector} == 1 unless requence_exporter_stream_position{selector} > 0"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = instant_query(prometheus, expr)
        if answer["status"] == "success" and answer["data"]["result"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus did not scrape {instance} at position {position}")


class Panels:
    """Runs the committed dashboards' panel queries as Grafana would, with All selected."""

    def __init__(self, prometheus: str, window_s: int) -> None:
        self.prometheus = prometheus
        self.window_s = window_s

    def query(self, title: str, ref: str = "A") -> list[dict[str, Any]]:
        """One target of the panel titled `title`, over a range of `window_s` seconds."""
        for path in DASHBOARDS:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
            for panel in dashboard["panels"]:
                if panel["title"] != title or "targets" not in panel:
                    continue
                values = variable_values(dashboard)
                window = f"{self.window_s}s"
                values.update(__range=window, __rate_interval=window)
                [t] = [t for t in panel["targets"] if t["refId"] == ref]
                expr = substitute(t["expr"], values)
                if t["instant"]:
                    answer = instant_query(self.prometheus, expr)
                    assert answer["status"] == "success", (title, answer.get("error"))
                    result: list[dict[str, Any]] = answer["data"]["result"]
                    return result
                return self._last_of_range(title, expr)
        raise AssertionError(f"no panel {title!r}")

    def _last_of_range(self, title: str, expr: str) -> list[dict[str, Any]]:
        """A range query over the window reduced to each series' last value, as a stat or
        a legend's "last" shows it."""
        end = time.time()
        params = {"query": expr, "start": end - self.window_s, "end": end, "step": 1}
        status, body = http_get(f"{self.prometheus}/api/v1/query_range?{urlencode(params)}")
        answer = json.loads(body)
        assert status == 200, (title, answer.get("error"))
        return [{"metric": r["metric"], "value": r["values"][-1]} for r in answer["data"]["result"]]

    def by(self, title: str, *labels: str, ref: str = "A") -> dict[Any, float]:
        """The panel's values keyed by one label, or by a tuple of several."""
        return {
            (
                r["metric"][labels[0]]
                if len(labels) == 1
                else tuple(r["metric"][k] for k in labels)
            ): float(r["value"][1])
            for r in self.query(title, ref)
        }

    def count(self, title: str, ref: str = "A") -> float:
        """A per-second rate over the whole window, back to a count (one series)."""
        [series] = self.query(title, ref)
        return float(series["value"][1]) * self.window_s


def test_panels_give_true_counts_through_restart_replacement_and_shards(
    loop: LoopThread, tmp_path: Path
) -> None:
    events, truth = _script(time.time())
    plan = [
        action
        for wave in range(WAVES)
        for action in (Stall(PAUSE_S if wave else FIRST_PAUSE_S), Send(count=WAVE))
    ]
    server = serve(loop, lambda: ScriptedServer(events, fallback=[*plan, Stall(TIMEOUT_S)]))
    assert isinstance(server, ScriptedServer)
    a, b, b2 = (f"127.0.0.1:{free_port()}" for _ in range(3))
    env = {"REQUENCE_ACCESS_TOKEN": server.access_token}

    def args(shard: str, listen: str, state: str) -> list[str]:
        return [
            *("--shard", shard, "--listen", listen),
            *("--state-file", str(tmp_path / state), "--checkpoint-interval", "1h"),
        ]

    started = time.time()
    prometheus, url = start_prometheus(tmp_path, {JOB: [a, b, b2]})
    try:
        with (
            ExporterProcess(args("0/2", a, "0.json"), env) as first_a,
            ExporterProcess(args("1/2", b, "1.json"), env) as first_b,
        ):
            for instance in (a, b):
                _wait_scraped(url, instance, None, FIRST_PAUSE_S)
            first_a.wait_position(RESTART_AFTER * WAVE, timeout=TIMEOUT_S)
            _wait_scraped(url, a, RESTART_AFTER * WAVE)
            assert first_a.stop() == 0
            with ExporterProcess(args("0/2", a, "0.json"), env) as second_a:
                _wait_scraped(url, a, RESTART_AFTER * WAVE, FIRST_PAUSE_S)
                first_b.wait_position(REPLACE_AFTER * WAVE, timeout=TIMEOUT_S)
                _wait_scraped(url, b, REPLACE_AFTER * WAVE)
                assert first_b.stop() == 0
                with ExporterProcess(args("1/2", b2, "1.json"), env) as replacement:
                    _wait_scraped(url, b2, REPLACE_AFTER * WAVE, FIRST_PAUSE_S)
                    for process in (second_a, replacement):
                        process.wait_position(len(events), timeout=TIMEOUT_S)
                    time.sleep(SCRAPES_S)
                    panels = Panels(url, math.ceil(time.time() - started) + 5)
                    check_panels(panels, truth, a=a, b=b, b2=b2)
                    assert second_a.stop() == 0
                    assert replacement.stop() == 0
    finally:
        stop(prometheus)
        loop.run(server.aclose())


def check_panels(
    panels: Panels, truth: dict[str, Counter[Any]], *, a: str, b: str, b2: str
) -> None:
    """The dashboards' panels against the truth of the script."""
    # Counts per task name and node: exact (the tables round increase()'s extrapolation).
    assert panels.by("Top failing tasks", "task_name") == truth["task"]
    assert panels.by("Most failing nodes", "task_name", "node") == truth["node"]
    # Rates over the whole run, times its length: the outcome counts, summed over shards.
    for ref, outcome in (("B", "ended"), ("C", "errored"), ("D", "aborted")):
        counted = panels.count("Tasks by outcome", ref)
        assert counted == pytest.approx(truth["outcome"][outcome], rel=0.1), outcome
    updates = sum(panels.by("Updates by type", "type").values()) * panels.window_s
    assert updates == pytest.approx(truth["other"]["updates"], rel=0.1)
    # Every shard skips the same malformed events: the panel counts each once, not per shard.
    skipped = panels.by("Skipped updates by reason", "reason")["malformed_json"]
    assert skipped * panels.window_s == pytest.approx(truth["other"]["malformed_json"], rel=0.1)
    # Per-instance tiles: the live instances only; the replaced one is gone.
    assert panels.by("Stream connected", "instance") == {a: 1.0, b2: 1.0}
    ages = panels.by("Last update age", "instance")
    assert set(ages) == {a, b2}
    assert all(0 <= age < 600 for age in ages.values()), ages
    # Nothing is in progress once every task finished, replaced instance or not.
    assert panels.count("In progress") == 0
    # One restart, of the instance that restarted in place.
    assert panels.by("Restarts in the time range", "instance") == {a: 1.0, b: 0.0, b2: 0.0}
    assert list(panels.by("Version", "version").values()) == [2.0]
