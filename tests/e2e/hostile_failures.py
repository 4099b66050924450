"""A watch-all script of failures whose task names, node names and errors hold HTML and script:
a root task whose sub-task's node fails and which then errors, and another task aborted."""

from __future__ import annotations

from exporter.simulator.scripted import Event
from tests.e2e.rig import update
from tests.hostile_html import IMG, SCRIPT

BEARER = "failures-bearer"
# The task ids.
ROOT = "6b1c7c0e-1c52-4d8a-a1c8-3c8a4f1c2b9d"
SUB = "0e9f0144-5ddb-4f55-a531-66f6a5e9b8e5"
OTHER = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
HOSTILE_NAME = f"{SCRIPT}{IMG}"
NODE = {"id": "node-x", "type": "service", "alias": IMG}


def script() -> list[Event]:
    """Four failures: the sub-task's node error and task error, the root's error, an abort."""
    return [
        Event("taskStart", update("taskStart", ROOT, 0.0, HOSTILE_NAME)),
        Event("taskStart", {**update("taskStart", SUB, 0.5, "sub"), "rootTaskId": ROOT}),
        Event("nodeStart", {**update("nodeStart", SUB, 1.0, "sub", node=NODE), "rootTaskId": ROOT}),
        Event(
            "nodeError",
            {
                **update("nodeError", SUB, 3.0, "sub", node=NODE, error=f"bad\x00 {SCRIPT}\n{IMG}"),
                "rootTaskId": ROOT,
            },
        ),
        Event("taskStart", update("taskStart", OTHER, 3.5, "billing")),
        Event(
            "taskError", {**update("taskError", SUB, 4.0, "sub", reason="x"), "rootTaskId": ROOT}
        ),
        Event("taskError", update("taskError", ROOT, 5.0, HOSTILE_NAME, reason=SCRIPT)),
        Event("taskAborted", update("taskAborted", OTHER, 6.0, "billing", reason="cancelled")),
    ]
