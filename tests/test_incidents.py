"""Fire-drill incidents on the simulated workload, and the normal workload's reliability."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import pytest

from exporter.metrics.alerting.objectives import THRESHOLDS
from exporter.simulator.incidents import INCIDENTS, incident_updates, slow_template
from exporter.simulator.workload import Workload, WorkloadUpdate

pytestmark = pytest.mark.slow

_TERMINAL = ("taskEnd", "taskError", "taskAborted")
START = 300.0  # seconds of workload before the incident


def _outcomes(updates: list[WorkloadUpdate], after: float | None = None) -> dict[str, Counter[str]]:
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for update in updates:
        if update.type in _TERMINAL and (after is None or update.offset >= after):
            outcomes[update.data.get("name") or "unnamed"][update.type] += 1
    return outcomes


def _updates(count: int, name: str | None = None, seed: int = 3) -> list[WorkloadUpdate]:
    workload = Workload(seed, rate=50.0, time_scale=0.1)
    stream = iter(workload)
    if name is not None:
        incident = INCIDENTS[name]
        if incident.node:
            workload.adjust = slow_template(incident, START)
        stream = incident_updates(iter(workload), incident, START, seed)
    return list(itertools.islice(stream, count))


def test_normal_workload_keeps_every_task_name_within_the_default_objective() -> None:
    """The demo pages nobody: each task name errors well below 1 - 99 % of its finished runs."""
    budget = 1 - THRESHOLDS["slo_objective"]
    outcomes = _outcomes(_updates(150_000, seed=1))
    assert len(outcomes) >= 5
    for name, counts in outcomes.items():
        finished = counts["taskEnd"] + counts["taskError"]
        assert counts["taskError"] / finished < 0.7 * budget, (name, counts)


def test_error_spike_fails_most_runs_of_one_task_name_from_its_start() -> None:
    normal = _updates(60_000)
    drill = _updates(60_000, "error-spike")
    before = [u for u in normal if u.offset < START]
    assert drill[: len(before)] == before
    after = _outcomes(drill, START)
    hit = after["image-resize"]
    assert hit["taskError"] / (hit["taskEnd"] + hit["taskError"]) > 0.7
    others = _outcomes(normal, START)
    for name, counts in after.items():
        if name != "image-resize":
            assert counts == others[name]


def test_aborts_and_stuck_change_only_their_task_name() -> None:
    aborts = _outcomes(_updates(60_000, "aborts"), START)["customer-onboarding"]
    assert aborts["taskAborted"] / sum(aborts.values()) > 0.5
    stuck = _outcomes(_updates(60_000, "stuck"), START)
    assert "document-ocr" not in stuck
    assert stuck["image-resize"]["taskEnd"] > 50


def test_slow_node_is_ten_times_slower_after_the_start_only() -> None:
    def durations(updates: list[WorkloadUpdate], node: str) -> tuple[list[float], list[float]]:
        started: dict[tuple[str, str], float] = {}
        early, late = [], []
        for u in updates:
            alias = (u.data.get("node") or {}).get("alias")
            if alias != node:
                continue
            key = (u.data["task_id"], alias)
            if u.type == "nodeStart":
                started[key] = u.offset
            elif u.type in {"nodeEnd", "nodeError"} and key in started:
                (late if started[key] >= START else early).append(u.offset - started.pop(key))
        return early, late

    early, late = durations(_updates(60_000, "slow-node"), "resize-large")
    _, normal_late = durations(_updates(60_000), "resize-large")
    median = sorted(late)[len(late) // 2]
    assert median > 5 * sorted(early)[len(early) // 2]
    assert median > 5 * sorted(normal_late)[len(normal_late) // 2]
