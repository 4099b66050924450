"""Fire drills: the normal workload, then after a delay one incident the alerts must catch.

`error-spike`: one task name fails most of its runs (RequenceTaskErrorBudgetBurn).
`slow-node`: one node of a task name takes ten times longer (RequenceTaskLatencyBudgetBurn, with
a latency objective on that task name; see `LATENCY_OBJECTIVE`).
`stuck`: one task name's tasks stop finishing (RequenceTasksStuck).
`aborts`: one task name's tasks are mostly aborted (RequenceTaskAbortsSpiking).
`outage`: the stream becomes unreachable (RequenceExporterDisconnected); the simulator closes,
which `demo` and `simulate` do themselves at the incident's start (`Incident.outage`).

The stream-level incidents rewrite updates from the incident's start on; the slow node changes
the template of tasks that start afterwards. Both leave the seeded random draws as they are, so
everything before the incident is the normal workload.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Final, NamedTuple

from exporter.simulator.server import WatchAllSimulator
from exporter.simulator.templates import Template
from exporter.simulator.workload import Workload, WorkloadUpdate

__all__ = [
    "INCIDENTS",
    "LATENCY_OBJECTIVE",
    "Incident",
    "drill_simulator",
    "incident_updates",
    "run_drill",
    "slow_template",
]

_TERMINAL: Final = frozenset({"taskEnd", "taskError", "taskAborted"})


class Incident(NamedTuple):
    """One fire drill: what it does, to which task name (and node), and the alert it raises."""

    name: str
    task_name: str
    alert: str
    description: str
    node: str | None = None
    share: float = 0.0  # error-spike, aborts: the share of runs affected
    outage: bool = False


INCIDENTS: Final = {
    incident.name: incident
    for incident in (
        Incident(
            "error-spike",
            "image-resize",
            "RequenceTaskErrorBudgetBurn",
            "image-resize fails 80 % of its runs",
            share=0.8,
        ),
        Incident(
            "slow-node",
            "image-resize",
            "RequenceTaskLatencyBudgetBurn",
            "node resize-large of image-resize takes ten times longer",
            node="resize-large",
        ),
        Incident(
            "stuck",
            "document-ocr",
            "RequenceTasksStuck",
            "document-ocr tasks stop finishing",
        ),
        Incident(
            "aborts",
            "customer-onboarding",
            "RequenceTaskAbortsSpiking",
            "customer-onboarding tasks are aborted on 60 % of their runs",
            share=0.6,
        ),
        Incident(
            "outage",
            "",
            "RequenceExporterDisconnected",
            "the Requence API stops answering",
            outage=True,
        ),
    )
}

# A latency objective that the normal image-resize workload keeps (about 0.3 % of its runs take
# longer than 1s at the simulator's time scale of 0.1, a burn of 0.3) and the slow node breaks
# (about 20 % do, a burn of 20): `requence-exporter rules --latency image-resize=1s:0.99`.
LATENCY_OBJECTIVE: Final = "image-resize=1s:0.99"


def slow_template(incident: Incident, start: float) -> Callable[[float, Template], Template]:
    """The workload hook of `slow-node`: from `start` on, its node is ten times slower."""

    def adjust(offset: float, template: Template) -> Template:
        if offset < start or template.name != incident.task_name:
            return template
        stages = tuple(
            tuple(
                node._replace(median=node.median * 10) if node.alias == incident.node else node
                for node in stage
            )
            for stage in template.stages
        )
        return template._replace(stages=stages)

    return adjust


def incident_updates(
    updates: Iterable[WorkloadUpdate], incident: Incident, start: float, seed: int = 0
) -> Iterator[WorkloadUpdate]:
    """`updates` with the stream-level part of `incident` applied from offset `start` on."""
    rng = random.Random(seed)
    for update in updates:
        named = update.data.get("name") == incident.task_name
        if update.offset < start or not named or update.type not in _TERMINAL:
            yield update
            continue
        if incident.name == "stuck":
            continue
        if incident.name in {"error-spike", "aborts"} and rng.random() < incident.share:
            kind = "taskError" if incident.name == "error-spike" else "taskAborted"
            if update.type == "taskEnd" or kind == "taskAborted":
                data = {k: v for k, v in update.data.items() if k not in {"result", "exit"}}
                data["reason"] = f"fire drill: {incident.name}"
                yield WorkloadUpdate(update.offset, kind, data)
                continue
        yield update


def drill_simulator(
    incident: Incident, delay: float, *, bearer: str, seed: int, rate: float
) -> WatchAllSimulator:
    """A simulator whose workload turns into `incident` `delay` seconds after it starts."""
    workload = Workload(
        seed,
        rate=rate,
        time_scale=0.1,
        adjust=slow_template(incident, delay) if incident.node else None,
    )
    return WatchAllSimulator(
        bearer=bearer, workload=incident_updates(workload, incident, delay, seed)
    )


async def run_drill(simulator: WatchAllSimulator, incident: Incident, delay: float) -> None:
    """Announce the incident, start it on time (closing the simulator for an outage)."""
    print(
        f"fire drill: in {delay:g}s {incident.description} (expect {incident.alert})",
        flush=True,
    )
    await asyncio.sleep(delay)
    print(f"fire drill started: {incident.description}", flush=True)
    if incident.outage:
        await simulator.aclose()
