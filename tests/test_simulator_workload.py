"""The simulated workload: deterministic per seed, and shaped like real Requence task streams."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import orjson
import pytest

from exporter.simulator.workload import DEFAULT_EPOCH, Workload, WorkloadUpdate, format_timestamp
from tests.factories import ALL_TYPES, TERMINAL

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
COUNT = 40_000


def take(workload: Workload, count: int) -> list[WorkloadUpdate]:
    return list(itertools.islice(workload, count))


@pytest.fixture(scope="module")
def updates() -> list[WorkloadUpdate]:
    return take(Workload(1, rate=50.0), COUNT)


def by_task(updates: list[WorkloadUpdate]) -> dict[str, list[WorkloadUpdate]]:
    tasks: dict[str, list[WorkloadUpdate]] = defaultdict(list)
    for update in updates:
        tasks[update.data["task_id"]].append(update)
    return tasks


def finished(updates: list[WorkloadUpdate]) -> dict[str, list[WorkloadUpdate]]:
    return {task_id: seq for task_id, seq in by_task(updates).items() if seq[-1].type in TERMINAL}


def test_same_seed_same_updates_other_seed_other_updates() -> None:
    def dump(seed: int) -> list[bytes]:
        return [orjson.dumps(list(u)) for u in take(Workload(seed, rate=20.0), 3000)]

    first, again, other = dump(7), dump(7), dump(8)
    assert first == again
    assert first != other


@pytest.mark.slow
def test_every_update_type_and_variant_appears(updates: list[WorkloadUpdate]) -> None:
    types = Counter(update.type for update in updates)
    assert set(types) == ALL_TYPES
    terminals = [u.data for u in updates if u.type in TERMINAL]
    assert any(data.get("requireAck") is True for data in terminals)
    assert any("requireAck" not in data for data in terminals)
    payloads = [orjson.dumps(u.data.get("data")) for u in updates if u.type == "nodeUpdate"]
    assert any(b'"__REQUENCE_type"' in payload for payload in payloads)
    outputs = {u.data["output"] for u in updates if u.type == "nodeUpdate"}
    assert None in outputs
    assert len(outputs) > 1
    node_types = {u.data["node"]["type"] for u in updates if u.type == "nodeStart"}
    assert node_types == {"service", "logic", "or", "reference"}
    assert any(u.data["node"]["alias"] is None for u in updates if u.type == "nodeStart")
    starts = [u.data for u in updates if u.type == "taskStart"]
    assert any("name" not in data for data in starts)
    assert any("name" in data and data["name"] is None for data in starts)
    assert any("rootTaskId" not in data for data in starts)
    assert any("rootTaskId" in data and data["rootTaskId"] is None for data in starts)
    names = {data.get("name") for data in starts} - {None}
    assert len(names) >= 5


def test_fields_are_well_formed(updates: list[WorkloadUpdate]) -> None:
    update_ids = [u.data["updateId"] for u in updates]
    assert len(set(update_ids)) == len(update_ids)
    for update in updates:
        data = update.data
        assert UUID4.match(data["task_id"])
        assert UUID4.match(data["updateId"])
        assert ISO_MS_Z.match(data["timestamp"])
        assert data["timestamp"] == format_timestamp(DEFAULT_EPOCH + update.offset)
        if update.type.startswith("node"):
            assert set(data["node"]) == {"id", "type", "alias"}
            assert UUID4.match(data["node"]["id"])
        extra = {
            "taskStart": "input",
            "nodeUpdate": "data",
            "nodeError": "error",
            "nodeDefer": "reason",
            "taskEnd": "result",
            "taskError": "reason",
            "taskAborted": "reason",
        }.get(update.type)
        if extra is not None:
            assert extra in data
        orjson.dumps(data)


def test_offsets_and_timestamps_never_go_back(updates: list[WorkloadUpdate]) -> None:
    offsets = [u.offset for u in updates]
    assert offsets == sorted(offsets)
    stamps = [datetime.fromisoformat(u.data["timestamp"]) for u in updates]
    assert stamps == sorted(stamps)
    assert offsets[0] >= 0


def test_each_task_starts_first_and_ends_once_last(updates: list[WorkloadUpdate]) -> None:
    tasks = by_task(updates)
    done = 0
    for seq in tasks.values():
        assert seq[0].type == "taskStart"
        assert [u.type for u in seq].count("taskStart") == 1
        terminals = [index for index, u in enumerate(seq) if u.type in TERMINAL]
        assert len(terminals) <= 1
        if terminals:
            assert terminals[0] == len(seq) - 1
            done += 1
    assert done > len(tasks) * 0.9


def test_sub_tasks_carry_their_root_and_own_name(updates: list[WorkloadUpdate]) -> None:
    tasks = by_task(updates)
    top = {tid for tid, seq in tasks.items() if seq[0].data.get("rootTaskId") is None}
    subs = {tid: seq for tid, seq in tasks.items() if tid not in top}
    assert subs
    for seq in subs.values():
        root = seq[0].data["rootTaskId"]
        assert {u.data["rootTaskId"] for u in seq} == {root}
        assert root in top
        if seq[0].data.get("name") is not None:
            assert seq[0].data["name"] != tasks[root][0].data.get("name")
    # Each sub-task starts just after a reference node of a task in the same tree started.
    index = {u.data["updateId"]: i for i, u in enumerate(updates)}
    for seq in subs.values():
        start = index[seq[0].data["updateId"]]
        root = seq[0].data["rootTaskId"]
        earlier = updates[max(0, start - 50) : start]
        assert any(
            u.type == "nodeStart"
            and u.data["node"]["type"] == "reference"
            and (u.data["task_id"] == root or u.data.get("rootTaskId") == root)
            for u in earlier
        )
    # Some sub-tasks are themselves parents: nested references keep the top task as root.
    parents = {u.data["task_id"] for seq in subs.values() for u in seq if u.type == "nodeStart"}
    assert any(
        u.type == "nodeStart" and u.data["node"]["type"] == "reference"
        for seq in subs.values()
        for u in seq
        if u.data["task_id"] in parents
    )


def attempts(seq: list[WorkloadUpdate]) -> tuple[dict[str, list[list[str]]], set[str]]:
    """Per node id, its attempts as lists of update types; plus nodes open at the end."""
    per_node: dict[str, list[list[str]]] = defaultdict(list)
    open_nodes: set[str] = set()
    for update in seq:
        if not update.type.startswith("node"):
            continue
        node_id = update.data["node"]["id"]
        if update.type == "nodeStart":
            assert node_id not in open_nodes, "a node starts again while its attempt is open"
            open_nodes.add(node_id)
            per_node[node_id].append(["nodeStart"])
            continue
        current = per_node[node_id][-1]
        if update.type == "nodeEnd" and current[-1] == "nodeError":
            current.append("nodeEnd")  # an error may or may not be followed by nodeEnd
            continue
        assert node_id in open_nodes, f"{update.type} outside an attempt"
        current.append(update.type)
        if update.type in {"nodeEnd", "nodeError", "nodeDefer"}:
            open_nodes.discard(node_id)
    return per_node, open_nodes


def test_node_attempts_are_well_formed(updates: list[WorkloadUpdate]) -> None:
    seen = Counter[str]()
    for seq in finished(updates).values():
        per_node, open_nodes = attempts(seq)
        outcome = seq[-1].type
        if outcome == "taskEnd":
            assert not open_nodes
        if open_nodes:
            seen["open_at_terminal"] += 1
        for node_attempts in per_node.values():
            for number, attempt in enumerate(node_attempts):
                body = attempt[1:]
                assert all(kind == "nodeUpdate" for kind in body[:-2])
                if number < len(node_attempts) - 1:
                    assert body[-1] == "nodeDefer", "only a deferral is followed by a retry"
                    seen["retry"] += 1
                if body[-2:] == ["nodeError", "nodeEnd"]:
                    seen["error_then_end"] += 1
                elif body and body[-1] == "nodeError":
                    seen["error_alone"] += 1
    assert {"open_at_terminal", "retry", "error_then_end", "error_alone"} <= set(seen)


def test_aborted_tasks_can_leave_nodes_open(updates: list[WorkloadUpdate]) -> None:
    aborted = [seq for seq in finished(updates).values() if seq[-1].type == "taskAborted"]
    assert aborted
    assert any(attempts(seq)[1] for seq in aborted)


@pytest.mark.slow
@pytest.mark.parametrize("rate", [5.0, 50.0, 500.0])
def test_average_rate_follows_the_target(rate: float) -> None:
    sample = take(Workload(3, rate=rate), 30_000)
    measured = len(sample) / sample[-1].offset
    assert rate * 0.8 < measured < rate * 1.2


def task_durations(updates: list[WorkloadUpdate]) -> dict[str, float]:
    return {tid: seq[-1].offset - seq[0].offset for tid, seq in finished(updates).items()}


def test_durations_are_long_tailed_and_scale_with_time_scale(
    updates: list[WorkloadUpdate],
) -> None:
    node_durations = []
    for seq in finished(updates).values():
        opened: dict[str, float] = {}
        for update in seq:
            if update.type == "nodeStart":
                opened[update.data["node"]["id"]] = update.offset
            elif update.type in {"nodeEnd", "nodeDefer", "nodeError"}:
                start = opened.pop(update.data["node"]["id"], None)
                if start is not None:
                    node_durations.append(update.offset - start)
    assert min(node_durations) < 0.01
    assert max(node_durations) > 60

    scaled = take(Workload(1, rate=50.0, time_scale=0.1), 4000)
    plain = task_durations(updates)
    fast = task_durations(scaled)
    common = set(plain) & set(fast)
    assert len(common) > 20
    for task_id in common:
        assert fast[task_id] == pytest.approx(plain[task_id] * 0.1, rel=1e-6, abs=1e-9)


def test_rejects_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        Workload(1, rate=0)


def _first_task(updates: list[WorkloadUpdate]) -> list[dict[str, Any]]:
    return [u.data for u in updates if u.data["task_id"] == updates[0].data["task_id"]]


def test_epoch_sets_the_timestamps() -> None:
    sample = take(Workload(5, epoch=1_800_000_000.0), 10)
    assert sample[0].data["timestamp"] == format_timestamp(1_800_000_000.0 + sample[0].offset)
    assert _first_task(sample)[0]["timestamp"].startswith("2027-01-15T")
