"""The fields of an update that decoding reads the usual way, as msgspec reads them.

msgspec builds these from the JSON in one step, checking each field's type and skipping every
other field (the payloads) without building it (`exporter.requence.decode`). A module of their
own: the compiled build turns classes of its modules into native ones, which msgspec does not
fill.
"""

from __future__ import annotations

import msgspec

__all__ = ["Fields", "NodeFields"]


class NodeFields(msgspec.Struct, gc=False):
    """The fields of an update's node the usual way reads."""

    id: str = ""
    type: str = ""
    alias: str | None = None


class Fields(msgspec.Struct, gc=False):
    """The fields of an update the usual way reads; a field of another type is not usual."""

    task_id: str = ""
    timestamp: str = ""
    type: str = ""
    name: str | None = None
    root_id: str | None = msgspec.field(default=None, name="rootTaskId")
    node: NodeFields | None = None
    update_id: str | None = msgspec.field(default=None, name="updateId")
    error: str | None = None
    reason: str | None = None
