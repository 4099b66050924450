"""Plain update values for tests (the core takes time as data, so no clock is needed)."""

from __future__ import annotations

from exporter.core.updates import Node, Update

SERVICE = Node("n-fetch", "service", "fetch")
LOGIC = Node("n-check", "logic", "check")
REF = Node("n-sub", "reference", None)


class Script:
    """Builds updates with increasing positions."""

    def __init__(self) -> None:
        self.position = 0
        self.updates: list[Update] = []

    def add(
        self,
        kind: str,
        task_id: str,
        ts: float,
        *,
        node: Node | None = None,
        name: str | None = "invoice",
        root: str | None = None,
        message: str | None = None,
    ) -> Update:
        """Append one update."""
        self.position += 1
        update = Update(
            self.position, kind, task_id, ts, name, root, node, message, f"u-{self.position}"
        )
        self.updates.append(update)
        return update
