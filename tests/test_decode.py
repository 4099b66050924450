"""Decoding raw events into updates, and every skip reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.updates import (
    MAX_FUTURE_SECONDS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_BYTES,
    Node,
    Update,
)
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
        # No `event:` line: the object's type names the update, and it may be any value.
        ("", enc(type="taskPaused"), "unknown_type"),
        ("", enc(type=["taskStart"]), "unknown_type"),
        ("", enc(type={"a": 1}), "unknown_type"),
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


def test_long_error_messages_are_bounded_in_bytes_and_the_cut_counted() -> None:
    cuts: dict[str, int] = {}
    update = decode_update(
        "nodeError",
        enc(node={"id": "n", "type": "logic"}, error={"msg": "\u00e9" * 10_000}),
        1,
        cuts=cuts,
    )
    assert isinstance(update, Update)
    assert update.message is not None
    assert len(update.message.encode()) <= MAX_MESSAGE_BYTES
    assert update.message.startswith('{"msg":"\u00e9')  # cut on a character boundary
    assert cuts == {"message": 1}


# Each parses as ISO 8601 or epoch milliseconds, but names no time `datetime` can render (or
# none a server clock writes): each once crashed the exporter where a failure was logged or shown.
UNRENDERABLE = [
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "1969-12-31T23:59:59Z",  # before 1970
    -1000,
]


@pytest.mark.parametrize("timestamp", UNRENDERABLE)
def test_times_outside_what_can_be_rendered_are_bad_timestamps(timestamp: object) -> None:
    assert parse_timestamp(timestamp) is None
    result = decode_update("taskError", enc(timestamp=timestamp), 4)
    assert isinstance(result, Skip)
    assert result.reason == "bad_timestamp"


@pytest.mark.parametrize("timestamp", [253402300799000, "9999-12-31T23:59:59Z", 1795345201000])
def test_times_past_the_skew_allowed_after_arrival_are_future_timestamps(
    timestamp: object,
) -> None:
    arrival = 1795341600.0  # 2026-11-22T10:00:00Z
    result = decode_update("taskStart", enc(timestamp=timestamp), 4, arrival + MAX_FUTURE_SECONDS)
    assert isinstance(result, Skip)
    assert result.reason == "future_timestamp"
    # Within the skew allowed, the server's time is taken as it is.
    near = decode_update("taskStart", enc(timestamp=1795345199000), 5, arrival + 3600.0)
    assert isinstance(near, Update)
    assert near.timestamp == 1795345199.0


def test_ids_and_names_over_their_byte_bound_are_cut_and_counted() -> None:
    long_id = "t" * 1000
    cuts: dict[str, int] = {}
    fields = {
        "task_id": long_id,
        "name": "n\u00e9" * 400,
        "rootTaskId": "r" * 300,
        "updateId": "u" * 257,
        "node": {"id": "i" * 5000, "type": "y" * 1000, "alias": "\U0001f600" * 100},
    }
    update = decode_update("nodeStart", enc(**fields), 1, cuts=cuts)
    assert isinstance(update, Update)
    assert update.node is not None
    texts = [update.task_id, update.name, update.root_id, update.update_id, *update.node]
    assert all(t is not None and len(t.encode()) <= MAX_TEXT_BYTES for t in texts)
    assert update.node.alias == "\U0001f600" * (MAX_TEXT_BYTES // 4)
    assert cuts == dict.fromkeys(
        ["task_id", "task_name", "root_task_id", "node_id", "node_type", "node_alias", "update_id"],
        1,
    )
    # Two long ids with one prefix stay two ids.
    other = decode_update("taskStart", enc(task_id=long_id[:-1] + "x"), 2)
    assert isinstance(other, Update)
    assert other.task_id != update.task_id
    assert other.task_id[:200] == update.task_id[:200]
    # At the bound nothing is cut or counted.
    exact = decode_update("taskStart", enc(task_id="é" * 128, name="x" * 256), 3, cuts=cuts)
    assert isinstance(exact, Update)
    assert (exact.task_id, exact.name) == ("é" * 128, "x" * 256)
    assert sum(cuts.values()) == 7


@pytest.mark.slow
@given(st.text(max_size=20), st.binary(max_size=200), st.integers())
def test_never_raises_on_arbitrary_input(event: str, data: bytes, position: int) -> None:
    assert isinstance(decode_update(event, data, position), Update | Skip)
