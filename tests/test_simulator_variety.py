"""Any seed shows every update type and node type early, and no task name fails often."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from exporter.simulator.server import WatchAllSimulator
from exporter.simulator.workload import Workload
from tests.factories import ALL_TYPES, TERMINAL

NODE_TYPES = {"service", "logic", "or", "reference"}


def seen_all_after(workload: Workload, limit: int) -> tuple[int, float]:
    """How many updates, and how many seconds, until every type has appeared (within `limit`)."""
    types: set[str] = set()
    nodes: set[str] = set()
    for count, update in enumerate(itertools.islice(workload, limit), start=1):
        types.add(update.type)
        if "node" in update.data:
            nodes.add(update.data["node"]["type"])
        if types == ALL_TYPES and nodes == NODE_TYPES:
            return count, update.offset
    pytest.fail(f"seed {workload.seed}: missing {ALL_TYPES - types} and {NODE_TYPES - nodes}")


@pytest.mark.parametrize("seed", range(40))
def test_every_type_within_3000_updates_and_the_first_minute_of_demo(seed: int) -> None:
    count, _ = seen_all_after(Workload(seed), 3000)
    assert count <= 3000
    # `demo` and `simulate` serve the simulator's own defaults at the CLI's default rate.
    demo = WatchAllSimulator(bearer="demo", seed=seed, rate=50.0).workload
    assert isinstance(demo, Workload)
    count, seconds = seen_all_after(demo, 3000)
    assert seconds < 60.0


@pytest.mark.slow
def test_no_task_name_fails_one_in_a_hundred() -> None:
    finished: Counter[str | None] = Counter()
    errored: Counter[str | None] = Counter()
    for update in itertools.islice(Workload(5, rate=50.0), 150_000):
        if update.type in TERMINAL:
            name = update.data.get("name")
            finished[name] += 1
            errored[name] += update.type == "taskError"
    assert len(finished) >= 6  # every template, and unnamed tasks
    assert sum(errored.values()) > 0
    for name, count in finished.items():
        assert count >= 50, name
        assert errored[name] / count < 0.01, (name, errored[name], count)
