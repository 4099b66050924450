"""Scripted watch-all streams shared by the end-to-end tests."""

from __future__ import annotations

from exporter.simulator.scripted import Event

A = "0d9e1a7c-5b7e-4a4e-9a43-3f3d1f0a0001"  # invoice, a top task
B = "0d9e1a7c-5b7e-4a4e-9a43-3f3d1f0a0002"  # ocr, a top task that fails
S = "0d9e1a7c-5b7e-4a4e-9a43-3f3d1f0a0003"  # ocr-page, a sub-task of A
C = "0d9e1a7c-5b7e-4a4e-9a43-3f3d1f0a0004"  # report, already running when the watch began
FETCH = {"id": "node-fetch", "type": "service", "alias": "fetch"}
SPAWN = {"id": "node-spawn", "type": "reference", "alias": "spawn"}
PAGE = {"id": "node-page", "type": "logic", "alias": None}
SCAN = {"id": "node-scan", "type": "service", "alias": "scan"}
RENDER = {"id": "node-render", "type": "service", "alias": "render"}


def at(seconds: float) -> str:
    return f"2026-11-22T10:00:{seconds:06.3f}Z"


def ev(kind: str, task: str, seconds: float, name: str | None, **extra: object) -> Event:
    data = {
        "task_id": task,
        "timestamp": at(seconds),
        "updateId": f"{task}-{kind}-{seconds}",
        "name": name,
        "rootTaskId": None,
        **extra,
    }
    return Event(kind, data)


SCRIPT = [
    ev("taskStart", A, 0.0, "invoice", input={"invoice": 7}),
    ev("nodeStart", A, 1.0, "invoice", node=FETCH),
    ev("taskStart", B, 1.5, "ocr"),
    ev(
        "nodeUpdate",
        A,
        2.0,
        "invoice",
        node=FETCH,
        output="ok",
        data={"file": {"__REQUENCE_type": "RequenceFile", "url": "https://files.invalid/1"}},
    ),
    ev("nodeStart", B, 2.0, "ocr", node=SCAN),
    ev("nodeDefer", A, 3.0, "invoice", node=FETCH, reason="rate limited"),
    ev("nodeStart", A, 3.5, "invoice", node=SPAWN),
    ev("taskStart", S, 4.0, "ocr-page", rootTaskId=A),
    ev("nodeStart", S, 4.0, "ocr-page", node=PAGE, rootTaskId=A),
    ev("nodeEnd", S, 4.5, "ocr-page", node=PAGE, rootTaskId=A),
    ev("taskEnd", S, 5.0, "ocr-page", rootTaskId=A, result={}, exit="done"),
    ev("nodeEnd", A, 5.5, "invoice", node=SPAWN),
    ev("nodeStart", A, 6.0, "invoice", node=FETCH),
    ev("nodeError", B, 6.0, "ocr", node=SCAN, error="bad scan"),
    ev("taskError", B, 7.0, "ocr", reason="scan failed", requireAck=True),
    ev("nodeEnd", A, 8.0, "invoice", node=FETCH),
    Event("nodeUpdate", b"{oops"),
    Event("taskPaused", {"task_id": A, "timestamp": at(8.2)}),
    ev("nodeStart", C, 8.5, "report", node=RENDER),
    ev("nodeEnd", C, 9.5, "report", node=RENDER),
    ev("taskAborted", C, 10.0, "report", reason="cancelled"),
    ev("taskEnd", A, 10.0, "invoice", result={"ok": True}, exit="done", requireAck=True),
]
LAST = len(SCRIPT)
