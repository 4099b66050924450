"""Raw watch-all events to typed `Update` values, or a skip with its reason.

Nothing downstream of this module touches raw JSON. Decoding is pure: no I/O, no clock (the
latest acceptable time is passed in). It is the stream's validation boundary: every value is
checked for its domain (`exporter.core.updates`) here, times from 1970 to an hour past arrival,
texts cut to their byte bound with each cut counted.

Two ways through, one result: the usual update (every field it reads of the type it should be,
texts short, its time ISO text) is read by msgspec into the few fields the exporter uses, the
payloads skipped without building them; whatever that way does not take is decoded whole with
orjson and sorted out field by field, each rare case named (`tests/test_decode_paths.py` holds
the first way to the second's results).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import msgspec
import orjson

from exporter.core.updates import (
    LAST_TIMESTAMP,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_BYTES,
    NODE_DEFER,
    NODE_ERROR,
    NODE_TYPES,
    TASK_ABORTED,
    TASK_ERROR,
    UPDATE_TYPES,
    Node,
    Update,
    cut_id,
    cut_text,
    over_bytes,
    parse_timestamp,
    timestamp_in_range,
)
from exporter.requence.fields import Fields

__all__ = ["Skip", "decode_update", "parse_timestamp"]


_KNOWN: Final = frozenset(UPDATE_TYPES)
# Updates whose reason or error message is kept (for span statuses and events, never labels).
_MESSAGE_FIELD: Final = {
    NODE_ERROR: "error",
    NODE_DEFER: "reason",
    TASK_ERROR: "reason",
    TASK_ABORTED: "reason",
}
# Texts up to these many characters are within their byte bound whatever they hold (4 bytes a
# character at most): the common case costs one length comparison.
_SHORT_TEXT: Final = MAX_TEXT_BYTES // 4
_SHORT_MESSAGE: Final = MAX_MESSAGE_BYTES // 4


# NamedTuple's generated __new__ is a Python function; tuple.__new__ builds the same value
# without that frame: 5 % of the pure build's instructions per update (callgrind).
_new: Final = tuple.__new__
_fromisoformat: Final = datetime.fromisoformat


_read_fields: Final = msgspec.json.Decoder(Fields).decode
# What msgspec raises for data it does not read as `Fields` (RecursionError: nested too deep).
_NOT_USUAL: Final = (msgspec.DecodeError, RecursionError)


class Skip(NamedTuple):
    """An event that was not turned into an update, and why (one of `SKIP_REASONS`)."""

    position: int
    reason: str
    detail: str


def _count(cuts: dict[str, int] | None, field: str) -> None:
    if cuts is not None:
        cuts[field] = cuts.get(field, 0) + 1


def _text(value: str, field: str, cuts: dict[str, int] | None) -> str:
    """A name, node type or message within its byte bound (the caller checked it may be over)."""
    limit = MAX_MESSAGE_BYTES if field == "message" else MAX_TEXT_BYTES
    if not over_bytes(value, limit):
        return value
    _count(cuts, field)
    return cut_text(value, limit)


def _id(value: str, field: str, cuts: dict[str, int] | None) -> str:
    """An id within its byte bound, still distinct from every other (`cut_id`)."""
    if not over_bytes(value, MAX_TEXT_BYTES):
        return value
    _count(cuts, field)
    return cut_id(value, MAX_TEXT_BYTES)


def _message(value: object, cuts: dict[str, int] | None) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > _SHORT_MESSAGE:
        return _text(text, "message", cuts)
    return text


def _iso_seconds(text: str) -> float:
    """ISO 8601 text (naive means UTC) to epoch seconds; -1.0 when it is not such a time."""
    try:
        moment = _fromisoformat(text)
    except ValueError:
        return -1.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _bad_time(position: int, raw: object, seconds: float) -> Skip:
    if timestamp_in_range(seconds):
        return Skip(position, "future_timestamp", f"{str(raw)[:40]!r} is ahead of its arrival")
    return Skip(position, "bad_timestamp", repr(str(raw)[:100]))


def decode_update(
    event_type: str,
    data: bytes,
    position: int,
    not_after: float = LAST_TIMESTAMP,
    cuts: dict[str, int] | None = None,
) -> Update | Skip:
    """Decode one SSE event (its `event` field, raw `data` bytes and position).

    An update timed after `not_after` (the arrival time plus the skew allowed) is skipped as
    `future_timestamp`; texts over their byte bound are cut, and each cut is counted in `cuts`
    by field (`CUT_FIELDS`).
    """
    # msgspec does not check the UTF-8 of strings it skips; orjson rejects the event for it.
    if data.isascii() or _is_utf8(data):
        try:
            fields = _read_fields(data)
        except _NOT_USUAL:
            pass
        else:
            update = _usual(fields, event_type, position, not_after)
            if update is not None:
                return update
    return _decode_whole(event_type, data, position, not_after, cuts)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _usual(fields: Fields, event_type: str, position: int, not_after: float) -> Update | None:
    """The update, when every field it reads is usual; None sends it the whole way."""
    kind = event_type or fields.type
    task_id = fields.task_id
    name = fields.name
    root_id = fields.root_id
    update_id = fields.update_id
    if (
        kind not in _KNOWN
        or not task_id
        or len(task_id) > _SHORT_TEXT
        or (name is not None and len(name) > _SHORT_TEXT)
        or (root_id is not None and len(root_id) > _SHORT_TEXT)
        or (update_id is not None and len(update_id) > _SHORT_TEXT)
    ):
        return None
    timestamp = _iso_seconds(fields.timestamp)
    if not 0.0 <= timestamp <= not_after:
        return None
    node = None
    if kind in NODE_TYPES:
        raw_node = fields.node
        if raw_node is None:
            return None
        node_id = raw_node.id
        node_type = raw_node.type
        alias = raw_node.alias
        if (
            not node_id
            or len(node_id) > _SHORT_TEXT
            or len(node_type) > _SHORT_TEXT
            or (alias is not None and len(alias) > _SHORT_TEXT)
        ):
            return None
        node = _new(Node, (node_id, node_type or "unknown", alias or None))
    message = None
    if kind in _MESSAGE_FIELD:
        message = fields.error if kind == NODE_ERROR else fields.reason
        if message is not None and len(message) > _SHORT_MESSAGE:
            return None
    name = name or None
    root_id = root_id or None
    return _new(
        Update, (position, kind, task_id, timestamp, name, root_id, node, message, update_id)
    )


def _decode_whole(
    event_type: str, data: bytes, position: int, not_after: float, cuts: dict[str, int] | None
) -> Update | Skip:
    """Any event, decoded whole: the rare cases sorted out, each skip with its reason."""
    try:
        parsed: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not _is_utf8(data):
            return Skip(position, "invalid_utf8", "data is not valid UTF-8")
        return Skip(position, "malformed_json", str(exc)[:200])
    if type(parsed) is not dict:
        return Skip(position, "not_object", type(parsed).__name__)
    obj: dict[str, Any] = parsed
    kind = event_type or obj.get("type")
    if type(kind) is not str or kind not in _KNOWN:  # a list or dict is not even hashable
        return Skip(position, "unknown_type", repr(str(kind)[:100]))
    task_id = obj.get("task_id")
    if type(task_id) is not str or not task_id:
        if task_id is None:
            task_id = obj.get("taskId")
        if task_id is None or task_id == "":
            return Skip(position, "missing_task_id", kind)
        if type(task_id) is not str:
            return Skip(position, "bad_field", "task_id")
    if len(task_id) > _SHORT_TEXT:
        task_id = _id(task_id, "task_id", cuts)
    raw_timestamp = obj.get("timestamp")
    timestamp = -1.0  # a float throughout (compiled, unboxed); -1 is no time
    if type(raw_timestamp) is str:
        timestamp = _iso_seconds(raw_timestamp)
    else:
        seconds = parse_timestamp(raw_timestamp)
        if seconds is not None:
            timestamp = seconds
    # One comparison for the usual time; the reason is sorted out on the rare way out.
    if not 0.0 <= timestamp <= not_after:
        return _bad_time(position, raw_timestamp, timestamp)
    name = obj.get("name")
    if type(name) is not str:
        if name is not None:
            return Skip(position, "bad_field", "name")
    elif not name:
        name = None
    elif len(name) > _SHORT_TEXT:
        name = _text(name, "task_name", cuts)
    root_id = obj.get("rootTaskId")
    if root_id is not None:
        if type(root_id) is not str:
            return Skip(position, "bad_field", "rootTaskId")
        if not root_id:
            root_id = None
        elif len(root_id) > _SHORT_TEXT:
            root_id = _id(root_id, "root_task_id", cuts)
    node = None
    if kind in NODE_TYPES:
        # Parsed here, not in a helper: all but a few updates are about a node.
        raw_node = obj.get("node")
        if type(raw_node) is not dict:
            return Skip(position, "bad_field", "node")
        node_id = raw_node.get("id")
        if type(node_id) is not str or not node_id:
            return Skip(position, "bad_field", "node")
        if len(node_id) > _SHORT_TEXT:
            node_id = _id(node_id, "node_id", cuts)
        node_type = raw_node.get("type")
        if type(node_type) is not str or not node_type:
            node_type = "unknown"
        elif len(node_type) > _SHORT_TEXT:
            node_type = _text(node_type, "node_type", cuts)
        alias = raw_node.get("alias")
        if type(alias) is not str:
            if alias is not None:
                return Skip(position, "bad_field", "node")
        elif not alias:
            alias = None
        elif len(alias) > _SHORT_TEXT:
            alias = _text(alias, "node_alias", cuts)
        node = _new(Node, (node_id, node_type, alias))
    message = None
    if kind in _MESSAGE_FIELD:
        message = _message(obj.get(_MESSAGE_FIELD[kind]), cuts)
    update_id = obj.get("updateId")
    if type(update_id) is not str:
        update_id = None
    elif len(update_id) > _SHORT_TEXT:
        update_id = _id(update_id, "update_id", cuts)
    fields = (position, kind, task_id, timestamp, name, root_id, node, message, update_id)
    return _new(Update, fields)
