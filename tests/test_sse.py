"""The SSE decoder on bytes alone: spec behaviour, split invariance, bounds, and never raising."""

from __future__ import annotations

import asyncio

import pytest
from httpx_sse._decoders import SSEDecoder as ReferenceDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.requence.intake import drain
from exporter.requence.sse import STEP, RawEvent, SSEDecoder


def decode_all(chunks: list[bytes], max_event_bytes: int = 1 << 20) -> list[RawEvent]:
    decoder = SSEDecoder(max_event_bytes)
    return [e for chunk in chunks for e in decoder.feed(chunk)]


def cut_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def reference(stream: bytes) -> list[tuple[str, str | None, str]]:
    """httpx-sse's decoder, fed line by line as httpx does.

    It dispatches an empty event for a data-less block once an id was seen; the WHATWG rules
    (and our decoder) dispatch nothing then, so such blocks are left out here.
    """
    decoder = ReferenceDecoder()
    out = []
    has_data = False
    for line in stream.decode().splitlines():
        has_data = has_data or line.startswith("data")
        sse = decoder.decode(line)
        if sse is not None and has_data:
            out.append((sse.event, sse.id or None, sse.data))
        if not line:
            has_data = False
    return out


def test_fields_comments_and_multiline_data() -> None:
    stream = (
        b": keep-alive\n\n"
        b'event: taskStart\nid: 7\ndata: {"a":\ndata: 1}\n\n'
        b"retry: 10\nevent:nodeEnd\nid:8\ndata:x\n\n"
    )
    assert decode_all([stream]) == [
        RawEvent("taskStart", "7", b'{"a":\n1}'),
        RawEvent("nodeEnd", "8", b"x"),
    ]


def test_crlf_split_across_reads_does_not_end_an_event_early() -> None:
    events = decode_all([b"event: a\r\nid: 1\r", b"\ndata: x\r\n\r\n"])
    assert events == [RawEvent("a", "1", b"x")]


def test_an_id_holding_nul_is_ignored_and_does_not_affect_its_neighbours() -> None:
    stream = (
        b"event: a\nid: 1\ndata: x\n\nevent: b\nid: 2\0\ndata: y\n\nevent: c\nid: 3\ndata: \0\n\n"
    )
    assert decode_all([stream]) == [
        RawEvent("a", "1", b"x"),
        RawEvent("b", None, b"y"),
        RawEvent("c", "3", b"\0"),
    ]


def test_oversized_event_is_reported_with_its_id_and_not_kept() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    events = decoder.feed(b"event: nodeUpdate\nid: 5\ndata: " + b"x" * 100)
    events += decoder.feed(b"y" * 10_000)
    assert len(decoder._pending) <= 1  # what streams by is dropped, not buffered
    events += decoder.feed(b"\n\nid: 6\ndata: {}\n\n")
    assert events == [
        RawEvent("nodeUpdate", "5", b"", oversized=True),
        RawEvent("", "6", b"{}"),
    ]


OVERSIZED = RawEvent("", None, b"", oversized=True)
NEXT = RawEvent("", None, b"next")


@pytest.mark.parametrize(
    ("size", "lead"),
    [
        (64, b""),  # held as one partial event
        (70_000, b""),  # held as a list of chunks
        # After an odd run of blank lines, in a read parsed a step at a time.
        (64, b"data: " + b"x" * (1 << 20) + b"\n\n\n"),
    ],
)
def test_an_event_of_exactly_the_limit_is_kept_wherever_the_reads_end(
    size: int, lead: bytes
) -> None:
    """An event's size is that of its block, without the blank line that ends it or blank
    lines before it."""
    stream = lead + b"data: " + b"d" * (size - 6) + b"\n\ndata: next\n\n"
    end = len(lead) + size  # where the blank line after the event starts
    before = [OVERSIZED] if lead else []
    for cuts in ([], [end + 1], [end - 10, end + 1], [end + 2]):
        chunks = cut_at(stream, cuts)
        kept = decode_all(chunks, size)
        assert kept == [*before, RawEvent("", None, b"d" * (size - 6)), NEXT], cuts
        assert decode_all(chunks, size - 1) == [*before, OVERSIZED, NEXT], cuts


def test_a_crlf_split_across_reads_in_a_long_event_still_ends_it() -> None:
    # The LF of the first CRLF arrives alone and is dropped; the next CRLF is the blank line,
    # so the next event's bytes are not counted with this one's.
    long = b"data: " + b"d" * 70_000
    chunks = [long + b"\r", b"\n", b"\r\n", b"data: " + b"e" * 30, b"\n\n"]
    assert decode_all(chunks, 70_010) == [
        RawEvent("", None, b"d" * 70_000),
        RawEvent("", None, b"e" * 30),
    ]


def test_a_crlf_split_across_reads_after_an_oversized_event_does_not_end_the_next_early() -> None:
    # The read that ends the skipped event ends in the CR of a CRLF; its LF comes next.
    chunks = [b"data: " + b"x" * 100, b"\n\nid: 1\r", b"\ndata: y\r\n\r\n"]
    assert decode_all(chunks, 64) == [OVERSIZED, RawEvent("", "1", b"y")]


EVENT = st.builds(
    lambda kind, pos, data: f"event: {kind}\nid: {pos}\ndata: {data}\n\n".encode(),
    st.sampled_from(["taskStart", "nodeEnd", "x"]),
    st.integers(0, 10**9),
    st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENT | st.just(b": ping\n\n"), max_size=20), st.data())
def test_agrees_with_httpx_sse_however_the_bytes_are_split(
    events: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(events)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = cut_at(stream, cuts)
    got = [(e.event, e.id, e.data.decode()) for e in decode_all(chunks)]
    assert got == reference(stream)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6), st.integers(1, 64))
def test_never_raises_and_split_points_do_not_change_the_events(
    blob: bytes, cuts: list[int], limit: int
) -> None:
    cuts = sorted(c for c in cuts if c <= len(blob))
    chunks = cut_at(blob, cuts)
    whole = decode_all([blob], limit)
    split = decode_all(chunks, limit)
    assert all(isinstance(e, RawEvent) for e in split)
    # The same events are oversized; only the head an oversized one is reported with (its
    # `event` and `id`) may be cut at another byte.
    assert [e._replace(event="", id=None) if e.oversized else e for e in split] == [
        e._replace(event="", id=None) if e.oversized else e for e in whole
    ]


def _large_read() -> bytes:
    """One read completing a small event, a 3 MiB event of short lines in every field shape
    (with a later event type and id, comments and unknown fields), and another small event."""
    lines = [b"data: x", b"data:y", b"data", b"data:  two spaces", b": comment", b"datax: no"]
    big = b"\n".join(lines[i % len(lines)] for i in range(600_000))
    return (
        b"event: taskStart\nid: 1\ndata: {}\n\n"
        b"event: first\nid: 2\n" + big + b"\nevent: nodeUpdate\nid: 3\nid: 4\0x\ndata: end\n\n"
        b"event: taskEnd\nid: 5\ndata: {}\n\n"
    )


def test_a_large_read_is_parsed_a_step_at_a_time_into_the_same_events() -> None:
    stream = _large_read()
    whole = SSEDecoder(16 << 20).feed(stream)
    assert [(e.event, e.id) for e in whole] == [
        ("taskStart", "1"),
        ("nodeUpdate", "3"),
        ("taskEnd", "5"),
    ]
    assert [(e.event, e.id, e.data.decode()) for e in whole] == reference(stream)
    decoder = SSEDecoder(16 << 20)
    steps = [decoder.feed(stream, STEP)]
    while decoder.backlog:
        steps.append(decoder.resume(STEP))
    assert [e for step in steps for e in step] == whole
    assert len(steps) >= len(stream) // (STEP + 65536)  # none parsed more than a window over


async def test_draining_a_large_read_lets_the_loop_run_between_steps() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    stream = _large_read()
    decoder = SSEDecoder(16 << 20)
    delivered = decoder.feed(stream, STEP)
    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await drain(decoder, delivered.extend)
    running.cancel()
    assert [e.id for e in delivered] == ["1", "3", "5"]
    assert not decoder.backlog
    assert ticks - before >= len(stream) // (STEP + 65536) - 1  # a turn of the loop per step
