"""The framing prototype (`bench/prototype.py`, `bench/prototype/frame.c`), built with the
machine's C compiler: what it measures is the exporter's work only if it gives exactly what the
exporter's decoder and pipeline give, on any bytes, read in any pieces."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.prototype import ARRIVAL, Frame, PrototypeDecoder, build, load, prototype_feed
from bench.render import sse_events
from bench.stream_runs import bench_exporter
from exporter.requence.decode import _NOT_USUAL, _read_fields
from exporter.requence.pipeline import Pipeline
from exporter.requence.sse import RawEvent, SSEDecoder

pytestmark = pytest.mark.slow  # a C build, then thousands of updates through two pipelines

LIMIT = 4096  # max_event_bytes of both paths here: every usual event fits, a padded one does not


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> Frame:
    return load(build(tmp_path_factory.mktemp("prototype")))


@pytest.fixture(scope="module")
def blocks() -> list[bytes]:
    """The simulator's first 1,500 updates as SSE blocks, each with its blank line."""
    return [event for _, event in sse_events(1_500)]


def _events(items: Sequence[object]) -> list[RawEvent]:
    return [RawEvent(*item[:3]) if type(item) is tuple else item for item in items]  # type: ignore[misc]


# Lines and pieces a stream may hold besides the usual blocks.
_PIECES = st.sampled_from(
    [
        b"event: nodeStart\nid: 7\ndata: {}\n\n",
        b"event: taskEnd\r\nid: 8\r\ndata: {}\r\n\r\n",
        b"event: a\r\nid: 1\r\ndata: {}\r\n\n",
        b": a comment\n\n",
        b"\n",
        b"\r",
        b"id: 9\x00\n",
        b"event: x\nid: 1\x002\ndata: {}\n\n",
        b"data: only\n\n",
        b"event: e\nid: 3\ndata: a\ndata: b\n\n",
        b"event: \xff\xfe\nid: \xc3(\ndata: \x80\n\n",
        b"event: e\nid: 4\ndata: " + b"x" * LIMIT + b"\n\n",
        b'event: e\nid: 5\ndata: {"task_id": "t"}\n',
        b"id: 6\nevent: e\ndata: {}\n\n",
        b"retry: 10\n\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.one_of(_PIECES, st.binary(max_size=24)), max_size=12))
@example(pieces=[b"event: a\nid: 1\ndata: {}\n\n", b"event: b\nid: 2\ndata: {}\n"])
@example(pieces=[b'event: a\nid: 1\ndata: {"task_id": "\xc3\xa9"}\n\n'])
def test_the_c_pass_takes_whole_usual_blocks_as_the_decoder_reads_them(
    frame: Frame, pieces: list[bytes]
) -> None:
    buffer = b"".join(pieces)
    items, stop = frame(buffer, _read_fields, LIMIT)
    assert 0 <= stop <= len(buffer)
    # What the C pass took and what the decoder makes of the rest are the decoder's events.
    expected = SSEDecoder(LIMIT).feed(buffer)
    assert _events(items) + SSEDecoder(LIMIT).feed(buffer[stop:]) == expected
    for _, _, data, fields in items:
        usual = None
        if data.isascii():
            try:
                usual = _read_fields(data)
            except _NOT_USUAL:  # what msgspec refuses goes the whole way
                usual = None
        assert fields == usual


def _odd(blocks: list[bytes], changes: list[tuple[int, int]]) -> list[bytes]:
    """The stream with some blocks changed, repeated or joined by others the C pass leaves."""
    out = list(blocks)
    for at, how in changes:
        block = out[at]
        match how:
            case 0:
                out[at] = block.replace(b"\n", b"\r\n")
            case 1:
                out[at] = b": keep-alive\n" + block
            case 2:
                out[at] = block + blocks[max(0, at - 3)]  # a replay of an earlier update
            case 3:
                out[at] = block + block  # the same position twice
            case 4:
                out[at] = block.replace(b"invoice", b"inv\xc3\xb6ice")  # not ASCII
            case 5:
                out[at] = block.replace(b'"timestamp":"', b'"timestamp":"x')  # not a time
            case 6:
                out[at] = block[:-3] + b" " * LIMIT + b"}\n\n"  # larger than the limit
            case 7:
                out[at] = block.replace(b'"task_id"', b'"taskId"')  # the whole way
            case _:
                out[at] = b"\n\n" + block.replace(b"id: ", b"id:", 1)
    return out


def _metrics(pipeline: Pipeline) -> list[str]:
    text = pipeline.metrics.render()
    skip = ("process_", "requence_exporter_event_loop_lag")
    return [line for line in text.splitlines() if not line.startswith(skip)]


@settings(max_examples=25, deadline=None)
@given(
    changes=st.lists(st.tuples(st.integers(0, 1_499), st.integers(0, 8)), max_size=10),
    cuts=st.lists(st.integers(1, 600_000), max_size=40),
)
@example(changes=[], cuts=[])
@example(changes=[(10, 0), (20, 2), (30, 3), (40, 6), (50, 4)], cuts=[100, 101, 5_000])
def test_the_prototype_counts_what_the_exporter_counts(
    frame: Frame, blocks: list[bytes], changes: list[tuple[int, int]], cuts: list[int]
) -> None:
    body = b"".join(_odd(blocks, changes))
    edges = sorted({0, len(body), *(cut for cut in cuts if cut < len(body))})
    reads = [body[a:b] for a, b in itertools.pairwise(edges)]
    exporter = bench_exporter("http://127.0.0.1:1", "2026-01-01T00:00:00Z").pipeline
    prototype = bench_exporter("http://127.0.0.1:1", "2026-01-01T00:00:00Z").pipeline
    decoder, wrapped = SSEDecoder(LIMIT), PrototypeDecoder(frame, LIMIT)
    for read in reads:
        before = decoder.progress, wrapped.progress
        exporter.feed(decoder.feed(read), ARRIVAL)
        events = wrapped.feed(read)
        if events:
            prototype_feed(prototype, events, ARRIVAL)
        # The watchdog hears of progress after the same reads.
        assert (decoder.progress != before[0]) == (wrapped.progress != before[1])
    assert prototype.status.position == exporter.status.position
    assert prototype.status.position_resets == exporter.status.position_resets
    assert _metrics(prototype) == _metrics(exporter)
    assert any(line.startswith("requence_nodes_started_total{") for line in _metrics(exporter))
