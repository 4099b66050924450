"""Memory under never-finishing tasks, in its own process (`python -m bench.memory TASKS CAP`).

Feeds `TASKS` taskStart updates (tasks that never end) through a Tracker and Metrics with the
given cap and prints JSON: resident memory before, at the cap, and at the end, and the bytes
each tracked task costs.
"""

from __future__ import annotations

import gc
import json
import sys
import uuid

from exporter.core.runtime import tune
from exporter.core.tracker import Tracker
from exporter.core.updates import Update
from exporter.metrics.store import Metrics

_NAMES = tuple(f"task-{i}" for i in range(20))


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    """Run the measurement and print it."""
    tasks, cap = int(sys.argv[1]), int(sys.argv[2])
    pinned = tune()  # the process settings the command line applies at start
    metrics = Metrics()
    tracker = Tracker(observers=[metrics], max_tasks=cap)
    metrics.tracker = tracker
    gc.collect()
    before = rss_bytes()
    at_cap = 0
    base = 1767225600.0
    for i in range(tasks):
        task_id = str(uuid.UUID(int=i + 1))
        name = _NAMES[i % len(_NAMES)]
        tracker.apply(
            Update(i + 1, "taskStart", task_id, base + i * 0.001, name, None, None, None, task_id)
        )
        if i + 1 == cap:
            gc.collect()
            at_cap = rss_bytes()
    gc.collect()
    end = rss_bytes()
    print(
        json.dumps(
            {
                "tasks": tasks,
                "mmap_threshold_pinned": pinned,
                "cap": cap,
                "tracked": len(tracker),
                "evicted": tracker.stats.evicted,
                "rss_before": before,
                "rss_at_cap": at_cap,
                "rss_end": end,
                "bytes_per_task": (at_cap - before) / cap,
                "growth_cap_to_end": end / at_cap - 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
