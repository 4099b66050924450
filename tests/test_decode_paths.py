"""The two ways through the decoder give one result.

`decode_update` reads the usual update with msgspec (only the fields it uses) and leaves the
rest to `_decode_whole` (orjson, every rare case named). Whatever an event holds, the result
must be the one the whole way gives, and the usual way must really take the usual update.
"""

from __future__ import annotations

import itertools

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.core.updates import (
    MAX_FUTURE_SECONDS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_BYTES,
    UPDATE_TYPES,
)
from exporter.requence.decode import _decode_whole, _read_fields, _usual, decode_update
from exporter.simulator.workload import Workload

NOT_AFTER = 1_800_000_000.0 + MAX_FUTURE_SECONDS
# Texts on either side of the length up to which the usual way keeps a text whole, and of the
# byte bounds past which both cut it.
SHORT, LONG = MAX_TEXT_BYTES // 4, MAX_MESSAGE_BYTES // 4
TEXTS = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="aé€😀", min_size=SHORT - 2, max_size=SHORT + 2),
    st.text(alphabet="ab€", min_size=MAX_TEXT_BYTES - 2, max_size=MAX_TEXT_BYTES + 2),
    st.text(alphabet="aé", min_size=LONG - 2, max_size=LONG + 2),
    st.sampled_from(["", "2026-01-01T00:00:00Z", "2027-01-15T03:00:00.5+02:00", "2026-01-01"]),
)
# orjson takes integers within 64 bits and finite doubles; numbers past those are left out
# (msgspec skips them in fields it does not read: see the test below).
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = (
    "task_id",
    "taskId",
    "timestamp",
    "type",
    "name",
    "rootTaskId",
    "node",
    "updateId",
    "error",
    "reason",
    "input",
    "data",
)
FIELD_VALUES = st.one_of(
    TEXTS, SCALARS, VALUES, st.integers(0, 1_900_000_000_000), st.floats(0, 2e12)
)
NODE_CHANGES = st.dictionaries(
    st.sampled_from(("id", "type", "alias", "extra")), FIELD_VALUES, max_size=2
)
EVENT_TYPES = st.sampled_from(["", "unknown", *UPDATE_TYPES])


def usual_update(kind: str, **fields: object) -> bytes:
    base = {
        "task_id": "t1",
        "timestamp": "2026-11-22T10:00:00.123Z",
        "updateId": "u1",
        "name": "invoice",
        "node": {"id": "n1", "type": "service", "alias": "fetch"},
        "type": kind,
    }
    return orjson.dumps({**base, **fields})


def same_both_ways(event_type: str, data: bytes) -> None:
    cuts_one: dict[str, int] = {}
    cuts_whole: dict[str, int] = {}
    one = decode_update(event_type, data, 7, NOT_AFTER, cuts_one)
    whole = _decode_whole(event_type, data, 7, NOT_AFTER, cuts_whole)
    assert one == whole
    assert cuts_one == cuts_whole


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=EVENT_TYPES,
    kind=st.sampled_from(UPDATE_TYPES),
    changes=st.dictionaries(st.sampled_from(KEYS), FIELD_VALUES, max_size=2),
    node_changes=NODE_CHANGES,
    whole=st.dictionaries(st.sampled_from(KEYS), FIELD_VALUES, max_size=8),
    from_scratch=st.booleans(),
)
def test_any_object_decodes_as_the_whole_way_decodes_it(
    *,
    event_type: str,
    kind: str,
    changes: dict[str, object],
    node_changes: dict[str, object],
    whole: dict[str, object],
    from_scratch: bool,
) -> None:
    # A usual update with a field or two changed (so that each check of the usual way meets
    # its edge on its own), or any object of the update's keys.
    if from_scratch:
        obj = whole
    else:
        obj = {**orjson.loads(usual_update(kind)), **changes}
        if isinstance(obj.get("node"), dict):
            obj["node"] = {**obj["node"], **node_changes}
    same_both_ways(event_type, orjson.dumps(obj))


# Values at each edge the two ways check: empty, null, not a text, ISO text that is no time,
# and texts on either side of the length the usual way keeps whole and the byte bounds.
EDGES = (
    "",
    None,
    5,
    ["x"],
    {"x": 1},
    "2026-01-01",
    "1969-12-31T23:59:59Z",  # before 1970
    "2099-01-01T00:00:00+01:00",  # past the latest time allowed
    "😀" * SHORT,
    "a" * (SHORT + 1),
    "a" * MAX_TEXT_BYTES,
    "a" * (MAX_TEXT_BYTES + 1),
    "é" * LONG,
    "a" * (LONG + 1),
    "a" * (MAX_MESSAGE_BYTES + 1),
)
FIELDS = ("task_id", "taskId", "timestamp", "type", "name", "rootTaskId", "updateId", "node")
MESSAGES = ("error", "reason")
NODE_FIELDS = ("id", "type", "alias")


@pytest.mark.parametrize("kind", UPDATE_TYPES)
def test_each_field_at_each_edge_decodes_as_the_whole_way(kind: str) -> None:
    usual = orjson.loads(usual_update(kind))
    checked = 0
    for event_type in ("", kind):
        for edge in EDGES:
            for field in (*FIELDS, *MESSAGES):
                same_both_ways(event_type, orjson.dumps({**usual, field: edge}))
                checked += 1
            for field in NODE_FIELDS:
                node = {**usual["node"], field: edge}
                same_both_ways(event_type, orjson.dumps({**usual, "node": node}))
                checked += 1
    assert checked == 2 * len(EDGES) * (len(FIELDS) + len(MESSAGES) + len(NODE_FIELDS))


@settings(max_examples=500, deadline=None)
@given(event_type=EVENT_TYPES, data=st.binary(max_size=200))
@example("taskStart", b'{"task_id":"a","timestamp":"2026-01-01T00:00:00Z","x":"\xff"}')
@example("taskStart", b'{"task_id":"a","timestamp":"2026-01-01T00:00:00Z","x":"\xc3\xa9"}')
@example("taskStart", b'{"task_id":"a","timestamp":"2026-01-01T00:00:00Z","x":"\\ud800"}')
@example("taskStart", b'{"task_id":"a","task_id":"b","timestamp":"2026-01-01T00:00:00Z"}')
@example("taskStart", b'{"task\\u005fid":"a","timestamp":"2026-01-01T00:00:00Z"}')
@example("taskStart", b'{"task_id":"a","timestamp":"2026-01-01T00:00:00Z","x":' + b"[" * 2000)
@example(
    "taskStart",
    b'{"task_id":"a","timestamp":"2026-01-01T00:00:00Z","x":' + b"[" * 2000 + b"]" * 2000 + b"}",
)
@example("taskStart", b'\xef\xbb\xbf{"task_id":"a","timestamp":"2026-01-01T00:00:00Z"}')
@example("taskStart", b'{"task_id":"a\\u0000","timestamp":"2026-01-01T00:00:00Z"} ')
def test_any_bytes_decode_as_the_whole_way_decodes_them(event_type: str, data: bytes) -> None:
    same_both_ways(event_type, data)


@given(kind=st.sampled_from(UPDATE_TYPES), text=st.text(min_size=1, max_size=SHORT))
def test_the_usual_way_takes_usual_updates(kind: str, text: str) -> None:
    data = usual_update(kind, name=text, error=text, reason=text, rootTaskId=text)
    taken = _usual(_read_fields(data), "", 3, NOT_AFTER)
    assert taken is not None
    assert taken == _decode_whole("", data, 3, NOT_AFTER, None)


def test_the_usual_way_takes_every_update_the_simulator_sends() -> None:
    events = [
        (update.type, orjson.dumps(update.data))
        for update in itertools.islice(Workload(11, rate=100.0), 5000)
    ]
    assert {kind for kind, _ in events} == set(UPDATE_TYPES)
    taken = [_usual(_read_fields(data), kind, 1, NOT_AFTER) for kind, data in events]
    assert None not in taken
    assert taken == [_decode_whole(kind, data, 1, NOT_AFTER, None) for kind, data in events]


def test_a_number_beyond_a_double_in_a_payload_does_not_skip_the_update() -> None:
    # Valid JSON (RFC 8259 leaves the range to the reader); orjson refuses it, msgspec skips it
    # unread. The update's own fields are valid, so it is applied.
    data = usual_update("nodeStart").replace(b'"type":"nodeStart"', b'"type":"nodeStart","x":1e400')
    update = decode_update("", data, 1, NOT_AFTER)
    assert update == _decode_whole("", usual_update("nodeStart"), 1, NOT_AFTER, None)
    assert _decode_whole("", data, 1, NOT_AFTER, None).reason == "malformed_json"  # type: ignore[union-attr]
