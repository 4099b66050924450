"""Deterministic ids: the byte forms OTLP carries are the integer ids, big-endian."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from exporter.core.ids import (
    node_span_id,
    node_span_id_bytes,
    task_span_id,
    task_span_id_bytes,
    trace_id,
    trace_id_hex,
)


@given(st.text(), st.text(), st.integers(-5, 10**6))
def test_span_id_bytes_are_the_ids_big_endian(task_id: str, node_id: str, attempt: int) -> None:
    assert task_span_id_bytes(task_id) == task_span_id(task_id).to_bytes(8, "big")
    assert node_span_id_bytes(task_id, node_id, attempt) == node_span_id(
        task_id, node_id, attempt
    ).to_bytes(8, "big")
    assert task_span_id(task_id) != 0


def test_trace_id_is_the_root_uuid() -> None:
    root, sub = uuid.uuid4(), uuid.uuid4()
    assert trace_id(str(root)) == root.int
    assert trace_id(str(sub), str(root)) == root.int
    assert trace_id_hex(str(sub), str(root)) == root.hex
