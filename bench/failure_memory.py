"""Memory of the recent-failures ring, in its own process (`python -m bench.failure_memory N`).

Feeds `N` failures through a Tracker and the FailureRecorder into a ring of `N` (the default
200) with worst-case failures (task names and reasons longer than their limits, so cut to 256
bytes and 1 KiB) and with typical ones (short names, a one-line reason), and 20 times as many
worst-case failures into a ring that large, where the byte budget has to hold. Each time it
measures, with tracemalloc, the memory the ring holds (what is freed when it is emptied) and
prints JSON.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
import uuid
from typing import Any

from exporter.core.tracker import Tracker
from exporter.core.updates import Node, Update
from exporter.serving.failures import DEFAULT_RECENT_FAILURES, FailureRecorder, FailureRing

NODE = Node("node-render", "service", "render")


def _fill(count: int, name: str, reason: str) -> FailureRing:
    """A ring holding `count` failures: half node errors, half task errors."""
    ring = FailureRing(count)
    tracker = Tracker(failures=FailureRecorder(ring), keep_attempts=False)
    base = 1767225600.0
    position = 0
    tasks = count // 2 + 1
    for i in range(tasks):
        task_id = str(uuid.UUID(int=i + 1))
        for kind, node, message in (
            ("taskStart", None, None),
            ("nodeStart", NODE, None),
            ("nodeError", NODE, reason),
            ("taskError", None, reason),
        ):
            position += 1
            tracker.apply(
                Update(position, kind, task_id, base + i, name, None, node, message, None)
            )
    return ring


def _measure(count: int, name: str, reason: str) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    ring = _fill(count, name, reason)
    gc.collect()
    full = tracemalloc.get_traced_memory()[0]
    estimate = ring.bytes
    kept = len(ring)
    ring._items.clear()
    gc.collect()
    empty = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    held = full - empty
    return {
        "max_count": count,
        "failures": kept,
        "bytes": held,
        "bytes_per_failure": held / kept,
        "budget_estimate_bytes": estimate,
        "budget_bytes": ring.max_bytes,
    }


def main() -> None:
    """Run both measurements and print them."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RECENT_FAILURES
    print(
        json.dumps(
            {
                "worst_case": _measure(count, "n" * 5000, "x" * 5000),
                "typical": _measure(count, "invoice-approval", "upstream returned 503"),
                "worst_case_large": _measure(count * 20, "n" * 5000, "x" * 5000),
            }
        )
    )


if __name__ == "__main__":
    main()
