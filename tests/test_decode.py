"""Decoding raw events into updates, and every skip reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.updates import Node, Update
from exporter.requence.decode import Skip, decode_update, parse_timestamp

BASE = {
    "task_id": "t1",
    "timestamp": "2026-11-22T10:00:00.123Z",
    "updateId": "u1",
    "name": "invoice",
    "rootTaskId": None,
}


def enc(**fields: object) -> bytes:
    return orjson.dumps({**BASE, **fields})


def test_node_update_decodes_to_typed_values() -> None:
    data = enc(node={"id": "n1", "type": "service", "alias": "fetch"}, data={"big": [1, 2]})
    update = decode_update("nodeUpdate", data, 42)
    assert update == Update(
        42,
        "nodeUpdate",
        "t1",
        1795341600.123,
        "invoice",
        None,
        Node("n1", "service", "fetch"),
        None,
        "u1",
    )


def test_single_task_stream_field_name_and_messages_are_accepted() -> None:
    raw = orjson.dumps(
        {"taskId": "t2", "timestamp": 1795341600123, "reason": "timeout", "rootTaskId": "r1"}
    )
    update = decode_update("taskError", raw, 1)
    assert isinstance(update, Update)
    assert (update.task_id, update.timestamp, update.message, update.root_id, update.name) == (
        "t2",
        1795341600.123,
        "timeout",
        "r1",
        None,
    )


@pytest.mark.parametrize(
    ("event", "data", "reason"),
    [
        ("taskStart", b"{not json", "malformed_json"),
        ("taskStart", b'{"task_id": "\xff\xfe"}', "invalid_utf8"),
        ("taskStart", b"[1, 2]", "not_object"),
        ("taskPaused", enc(), "unknown_type"),
        ("taskStart", enc(task_id=None), "missing_task_id"),
        ("taskStart", enc(task_id=""), "missing_task_id"),
        ("taskStart", enc(task_id=12), "bad_field"),
        ("taskStart", enc(timestamp="yesterday"), "bad_timestamp"),
        ("taskStart", enc(timestamp=None), "bad_timestamp"),
        ("taskStart", enc(timestamp=float("1e30")), "bad_timestamp"),
        ("taskStart", enc(name=["x"]), "bad_field"),
        ("taskStart", enc(rootTaskId=5), "bad_field"),
        ("nodeStart", enc(), "bad_field"),
        ("nodeStart", enc(node={"id": 3}), "bad_field"),
        ("nodeEnd", enc(node={"id": "n", "type": "service", "alias": 7}), "bad_field"),
    ],
)
def test_bad_input_is_a_skip_with_its_reason(event: str, data: bytes, reason: str) -> None:
    result = decode_update(event, data, 3)
    assert isinstance(result, Skip)
    assert (result.position, result.reason) == (3, reason)


def test_timestamps_in_every_accepted_form_agree() -> None:
    forms = [
        "2026-11-22T10:00:00.5Z",
        "2026-11-22T11:00:00.5+01:00",
        "2026-11-22T10:00:00.5",
        1795341600500,
    ]
    assert {parse_timestamp(f) for f in forms} == {1795341600.5}
    assert parse_timestamp(True) is None


def test_long_error_messages_are_bounded() -> None:
    update = decode_update(
        "nodeError", enc(node={"id": "n", "type": "logic"}, error={"msg": "x" * 10_000}), 1
    )
    assert isinstance(update, Update)
    assert update.message is not None
    assert len(update.message) == 2048


@given(st.text(max_size=20), st.binary(max_size=200), st.integers())
def test_never_raises_on_arbitrary_input(event: str, data: bytes, position: int) -> None:
    assert isinstance(decode_update(event, data, position), Update | Skip)
